/* A mailslot client in C: each MESSAGE argument is one message.
 *
 *     cc -o client client.c && ./client /mailslot/chat hello world
 *
 * A client opens an existing slot write-only; one write(2) is one whole
 * message, never split and never merged with another. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *why(int error) {
    switch (error) {
    case ENOENT: return "no such mailslot (no server has created it)";
    case EMSGSIZE: return "message larger than the mailslot's maximum";
    case ENOBUFS: return "the mailslot's queue is full";
    case EPIPE: return "the server has closed the mailslot";
    default: return strerror(error);
    }
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s SLOT MESSAGE...\n", argv[0]);
        return 2;
    }
    int fd = open(argv[1], O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "client: %s: %s\n", argv[1], why(errno));
        return 1;
    }
    for (int i = 2; i < argc; i++) {
        size_t len = strlen(argv[i]);
        if (write(fd, argv[i], len) != (ssize_t)len) {
            fprintf(stderr, "client: %s: %s\n", argv[1], why(errno));
            return 1;
        }
    }
    return close(fd) == 0 ? 0 : 1;
}

#!/usr/bin/env bash
# A chat room on mailslots, in plain bash: every participant serves its own
# slot, $MAILSLOT/chat/NAME, and prints whatever arrives there; every line
# typed goes to every other participant.
#
#   chat.sh NAME          chat with everyone on this machine
#   chat.sh --net NAME    chat with everyone in the domain, through the
#                         network bridge (mailslotfs mount --bridge ...)
#
# With --net, a line is written once to .net/*/chatroom: the bridge
# broadcasts it to every machine in the domain (and to this one), where the
# first participant to start serves `chatroom` and relays what arrives to
# every local participant. Your own lines come back, which shows they went
# out. Network messages carry at most 424 bytes.
#
# MAILSLOT: the mount (default /mailslot). End with Ctrl-D or Ctrl-C.
set -uo pipefail
mnt=${MAILSLOT:-/mailslot}
net=0
if [ "${1:-}" = --net ]; then
  net=1
  shift
fi
name=${1:?usage: chat.sh [--net] NAME}
room=$mnt/chat
own=$room/$name

# Writes one message to every local participant but $1 (may be empty). A
# participant who left meanwhile is simply skipped.
to_everyone_but() {
  local skip=$1 text=$2 slot
  for slot in "$room"/*; do
    [ "$slot" = "$skip" ] && continue
    { printf '%s\n' "$text" >"$slot"; } 2>/dev/null
  done
}

mkdir -p "$room" 2>/dev/null
[ -d "$room" ] || { echo "chat.sh: $room: cannot create the room" >&2; exit 1; }
# `cat <>` creates the slot (it fails if NAME is taken) and prints each
# message as it arrives; a message ends in a newline, so cat's output is
# one line per message.
cat <>"$own" &
server=$!
relay=
trap 'kill $server $relay 2>/dev/null' EXIT
until [ -e "$own" ]; do
  kill -0 $server 2>/dev/null || { echo "chat.sh: $own: name taken or no mailslotfs mount" >&2; exit 1; }
  sleep 0.01
done
if ((net)); then
  # The host's relay, if no one here runs it yet.
  (cat <>"$mnt/chatroom" 2>/dev/null | while IFS= read -r line; do to_everyone_but "" "$line"; done) &
  relay=$!
fi

to_everyone_but "$own" "*** $name joined"
while IFS= read -r line; do
  if ((net)); then
    { printf '%s: %s\n' "$name" "$line" >"$mnt/.net/*/chatroom"; } 2>/dev/null ||
      echo "chat.sh: the network bridge is not running" >&2
  else
    to_everyone_but "$own" "$name: $line"
  fi
done
to_everyone_but "$own" "*** $name left"

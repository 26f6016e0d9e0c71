//! The batch interface through a real mount: switched on per handle by an
//! ioctl, one write carries many messages and one read returns them all,
//! while plain handles on the same slot keep one message per call.

mod common;

use common::*;

#[test]
fn batch_handles_move_many_messages_per_call_and_plain_handles_do_not_change() {
    let m = mount!();
    let out = py_ok(
        &m,
        r#"
        import fcntl
        BATCH = 0x40044D01
        def frames(*ms): return b"".join(struct.pack("<I", len(x)) + x for x in ms)
        def unframe(buf):
            out = []
            while buf:
                n, = struct.unpack("<I", buf[:4]); out.append(buf[4:4 + n]); buf = buf[4 + n:]
            return out
        srv = create("bulk")
        plain = client("bulk")
        bulk = client("bulk")
        fcntl.ioctl(bulk, BATCH, struct.pack("I", 1))
        # One framed write: three messages. A plain write: one, frames or not.
        assert os.write(bulk, frames(b"a", b"bb", b"ccc")) == 4 * 3 + 6
        os.write(plain, frames(b"not", b"split"))
        assert os.getxattr(P("bulk"), "user.mailslot.message_count") == b"4"
        # The plain server handle reads one message per call.
        assert os.read(srv, 100) == b"a"
        # Switched on, the server reads every waiting message that fits.
        fcntl.ioctl(srv, BATCH, struct.pack("I", 1))
        got = unframe(os.read(srv, 65536))
        assert got == [b"bb", b"ccc", frames(b"not", b"split")], got
        # A parked batch read is answered with one frame.
        t = threading.Timer(0.05, lambda: os.write(plain, b"late"))
        t.start()
        assert unframe(os.read(srv, 100)) == [b"late"]
        t.join()
        # Bad framing is EINVAL, an unknown ioctl ENOTTY, switching off works.
        assert err(os.write, bulk, b"\x09\x00\x00\x00abc") == errno.EINVAL
        assert err(fcntl.ioctl, srv, 0x40044D7F, struct.pack("I", 1)) == errno.ENOTTY
        fcntl.ioctl(srv, BATCH, struct.pack("I", 0))
        os.write(plain, b"plain again")
        assert os.read(srv, 100) == b"plain again"
        print("ok")
        "#,
    );
    assert_eq!(out.trim(), "ok");
}

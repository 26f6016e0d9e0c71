//! No unbounded growth through `.net` (issue 12, item 5): any user can name
//! any target, so what is only named lives while the kernel knows it;
//! directories made there and endpoint handles are charged to their user
//! like local names and handles. A bridge on loopback with no name service:
//! nothing here sends a datagram.

mod common;

use std::time::Duration;

use common::*;

/// A bridged mount on loopback with no name service.
fn bridged(tag: &str, port_offset: u32, opts: &[&str]) -> Mount {
    Mount::loopback_bridge(tag, port_offset, "treehost", &["--no-name-service"], opts)
}

fn net_nodes(m: &Mount) -> u64 {
    getxattr(&m.path(".net"), "user.mailslot.bridge.net_nodes")
        .expect("net_nodes")
        .parse()
        .expect("a number")
}

fn vm_rss(pid: i32) -> u64 {
    daemon_status_kib(pid, "VmRSS:") * 1024
}

fn daemon_status_kib(pid: i32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix(field)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// Nodes made by being named the daemon lets the kernel keep
/// (`NET_KEPT` in src/fs/net_tree.rs), and a margin for the trim under way.
const KEPT: u64 = 512 + 64;

fn entries(m: &Mount) -> u64 {
    getxattr(&m.dir, "user.mailslot.limits.entries")
        .unwrap()
        .parse()
        .unwrap()
}

fn listing(m: &Mount, dir: &str) -> Vec<String> {
    std::fs::read_dir(m.path(dir))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}

/// Names under `.net` nobody uses: enough of them to make the daemon ask
/// the kernel to drop the oldest.
fn flood(m: &Mount, tag: &str) {
    py_ok(
        m,
        &format!(
            r#"
        for i in range(2000):
            os.stat(P(".net/{tag}%d" % i))
        "#
        ),
    );
}

#[test]
fn names_only_looked_at_are_forgotten_and_the_daemon_does_not_grow() {
    if !fuse_ok() {
        return;
    }
    let m = bridged("net-forget", 1, &[]);
    std::fs::create_dir(m.path("app")).unwrap();
    let (fresh, charged) = (net_nodes(&m), entries(&m));
    let before = vm_rss(m.pid());
    // 5,000 targets, each with the mirrored `app` below it and an endpoint
    // opened and closed there, plus a name that is not there at all.
    let out = py_ok(
        &m,
        r#"
        for i in range(5000):
            os.stat(P(".net/HOST%d" % i))
            assert err(os.stat, P(".net/HOST%d/nothing" % i)) == errno.ENOENT
            os.close(os.open(P(".net/HOST%d/app/x" % i), os.O_WRONLY | os.O_CREAT))
        print("done")
        "#,
    );
    assert!(out.contains("done"));
    let kept = net_nodes(&m);
    let grown = vm_rss(m.pid()).saturating_sub(before);
    println!(
        "15,000 .net names looked at: {kept} nodes kept ({fresh} at start), daemon grew {} KiB",
        grown / 1024
    );
    assert!(kept <= fresh + KEPT, "{kept} nodes kept");
    // What was made and given back leaves the allocator's free lists, not
    // 15,000 nodes of about 600 B each (9 MB).
    assert!(grown < 3 << 20, "daemon grew {grown} bytes");
    // Every node kept is charged, and every one forgotten given back.
    assert_eq!(entries(&m), charged + kept - fresh);
}

#[test]
fn a_name_in_use_stays_and_made_directories_stay_until_removed() {
    if !fuse_ok() {
        return;
    }
    let m = bridged("net-keep", 2, &[]);
    // An open endpoint keeps its name; a closed one is forgotten once the
    // kernel drops it; a made directory stays whatever the kernel drops.
    let held = open(
        &m.path(".net/SUE/inbox"),
        libc::O_WRONLY | libc::O_CREAT,
        0o644,
    )
    .expect("endpoint");
    std::fs::create_dir(m.path(".net/SUE/made")).unwrap();
    drop(
        open(
            &m.path(".net/SUE/gone"),
            libc::O_WRONLY | libc::O_CREAT,
            0o644,
        )
        .expect("endpoint"),
    );
    let mut listed = listing(&m, ".net/SUE");
    listed.sort();
    assert_eq!(listed, ["gone", "inbox", "made"]);
    flood(&m, "FLOOD");
    // The kernel forgets in its own time: poll.
    assert!(
        wait_until(Duration::from_secs(10), || !listing(&m, ".net/SUE")
            .contains(&"gone".to_owned())),
        "{:?}",
        listing(&m, ".net/SUE")
    );
    let listed = listing(&m, ".net/SUE");
    assert!(listed.contains(&"inbox".to_owned()), "{listed:?}");
    assert!(listed.contains(&"made".to_owned()), "{listed:?}");
    // Closed, the endpoint goes once the kernel lets go of it.
    drop(held);
    flood(&m, "AGAIN");
    assert!(
        wait_until(Duration::from_secs(10), || listing(&m, ".net/SUE")
            == ["made"]),
        "{:?}",
        listing(&m, ".net/SUE")
    );
    assert!(m.path(".net/sue/MADE").is_dir());
    std::fs::remove_dir(m.path(".net/SUE/made")).unwrap();
    assert!(listing(&m, ".net/SUE").is_empty());
}

#[test]
fn one_user_cannot_fill_the_net_tree_for_the_others() {
    if !root_with_fuse("running as another user") {
        return;
    }
    let m = bridged(
        "net-share",
        3,
        &["allow_other", "user_entries=100", "user_memory=500000"],
    );
    // One unprivileged user: an endpoint, held; directories under its
    // target until ENOSPC; then more handles on the endpoint until ENOBUFS,
    // all held. Root's own names and handles still work meanwhile.
    let out = py_ok(
        &m,
        r#"
        import resource
        pid = os.fork()
        if pid == 0:
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
                os.setgid(64030); os.setuid(64030)
                endpoint = P(".net/BOB/x")
                handles = [os.open(endpoint, os.O_WRONLY | os.O_CREAT)]
                made = 0
                while True:
                    try:
                        os.mkdir(P(".net/BOB/d%d" % made))
                    except OSError as e:
                        assert e.errno == errno.ENOSPC, e
                        break
                    made += 1
                print("dirs", made, flush=True)
                while len(handles) < 19000:
                    try:
                        handles.append(os.open(endpoint, os.O_WRONLY))
                    except OSError as e:
                        assert e.errno == errno.ENOBUFS, e
                        break
                print("handles", len(handles), flush=True)
                # Full: even looking at a new target is refused.
                assert err(os.stat, P(".net/NEWHOST")) == errno.ENOSPC
                os._exit(0)
            except BaseException as e:
                print("child failed:", repr(e), flush=True)
                os._exit(1)
        _, status = os.waitpid(pid, 0)
        assert status == 0, status
        os.mkdir(P(".net/ROOTS/mine"))
        os.close(os.open(P(".net/ROOTS/mine/x"), os.O_WRONLY | os.O_CREAT))
        print("root still makes names")
        "#,
    );
    let figure = |name: &str| -> u64 {
        out.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {out}"))
    };
    // 100 entries: the target BOB, the endpoint and 98 directories.
    assert_eq!(figure("dirs"), 98, "{out}");
    // About 500 kB of the share left, at 192 B a handle.
    let handles = figure("handles");
    assert!((1000..19000).contains(&handles), "{out}");
    assert!(out.contains("root still makes names"), "{out}");
    let refused = |limit: &str| {
        getxattr(&m.dir, &format!("user.mailslot.limits.refused_{limit}"))
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    assert_eq!(refused("user_entries"), 2);
    assert_eq!(refused("user_memory"), 1);
}

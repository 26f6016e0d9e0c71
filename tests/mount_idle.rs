//! Issue 10: a waiting mailslot costs nothing. With many servers waiting in
//! read() and nothing happening, no daemon thread wakes up: there is no
//! periodic scan, and the timer sleeps until a deadline exists.

mod common;

use std::time::Duration;

use common::*;

/// Context switches of every thread of process `pid`.
fn context_switches(pid: i32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("status")).ok())
        .flat_map(|status| {
            status
                .lines()
                .filter(|l| l.contains("ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .collect::<Vec<_>>()
        })
        .sum()
}

#[test]
fn two_hundred_waiting_readers_wake_the_daemon_never() {
    let m = Mount::daemon(&[]);
    let readers = 200;
    let mut child = spawn(
        std::process::Command::new("python3")
            .arg("-c")
            .arg(format!(
                "{PY_PRELUDE}\n{}",
                dedent(&format!(
                    r#"
                    fds = [create("idle%d" % i) for i in range({readers})]
                    for fd in fds:
                        threading.Thread(target=os.read, args=(fd, 100), daemon=True).start()
                    print("ready", flush=True)
                    sys.stdin.read()
                    "#
                ))
            ))
            .arg(&m.dir)
            .stdin(std::process::Stdio::piped()),
    );
    let pid = child.id() as i32;
    let mut out = Lines::new(&mut child);
    out.expect("ready\n", Duration::from_secs(10));
    let parked = || {
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
        tasks
            .flatten()
            .filter(|t| {
                let tid = t.file_name().to_string_lossy().parse::<i32>().unwrap_or(0);
                in_fuse(tid)
            })
            .count()
    };
    assert!(
        wait_until(Duration::from_secs(10), || parked() >= readers),
        "only {} readers parked",
        parked()
    );
    let daemon = m.pid();
    let before = context_switches(daemon);
    // A measurement window, not synchronisation: nothing may happen in it.
    std::thread::sleep(Duration::from_secs(2));
    let woken = context_switches(daemon) - before;
    println!("{readers} waiting readers: daemon woke {woken} times in 2 s");
    assert!(woken <= 2, "the idle daemon woke {woken} times in 2 s");
    drop(child.stdin.take());
    let _ = finish(child, Duration::from_secs(10));
}

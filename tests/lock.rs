//! One writer, many readers ([I6]), across processes: while one process
//! holds the write lock, a second writing process gets "database is locked
//! (held by pid N)" and a reader still reads.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

use tally::Db;

#[test]
#[ignore = "run by `a_second_writing_process_is_refused` as a child process"]
fn hold_lock() {
    let dir = std::env::var_os("TALLY_LOCK_DIR").expect("TALLY_LOCK_DIR");
    let db = Db::open(&dir).unwrap();
    let mut w = db.writer().unwrap();
    w.append("held", "followers", 0, 1).unwrap();
    w.commit().unwrap();
    println!("\nlocked");
    // Hold the lock until the parent closes our stdin.
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
}

#[test]
fn a_second_writing_process_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut holder = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "hold_lock",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env("TALLY_LOCK_DIR", dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(holder.stdout.take().unwrap()).lines();
    assert!(
        lines.any(|l| l.is_ok_and(|l| l.trim() == "locked")),
        "the holder never locked"
    );

    let out = assert_cmd::Command::cargo_bin("tally")
        .unwrap()
        .args(["--db", dir.path().to_str().unwrap(), "compact"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr.trim(),
        format!("tally: database is locked (held by pid {})", holder.id())
    );
    // Readers are not blocked.
    let out = assert_cmd::Command::cargo_bin("tally")
        .unwrap()
        .args([
            "--db",
            dir.path().to_str().unwrap(),
            "query",
            "count(followers)",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "count\n1\n");

    drop(holder.stdin.take());
    holder.wait().unwrap();
    let out = assert_cmd::Command::cargo_bin("tally")
        .unwrap()
        .args(["--db", dir.path().to_str().unwrap(), "compact"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

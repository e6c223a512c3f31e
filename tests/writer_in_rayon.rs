//! A program that appends from inside a task of rayon's global pool: the
//! writer's flushes encode on threads of their own, so a flush never waits
//! for the pool its caller is blocking. Alone in its test binary, since it
//! sizes the global pool to one thread.

use std::sync::mpsc;
use std::time::Duration;

use tally::{Db, Options};

#[test]
fn appending_from_a_rayon_task_does_not_deadlock() {
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build_global()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        let db = Db::open_with(&path, Options::default().memory_budget(64 * 1024)).unwrap();
        let mut w = db.writer().unwrap();
        // 3,000 series: a flush of more than 1,024 series is cut into
        // several chunks, which is what needs the encoding threads.
        rayon::scope(|_| {
            for h in 0..40_000i64 {
                w.append(&format!("a{}", h % 3_000), "followers", h * 1_000, 7)
                    .unwrap();
            }
        });
        let summary = w.commit().unwrap();
        done.send(summary.points).unwrap();
    });
    let points = finished
        .recv_timeout(Duration::from_secs(60))
        .expect("the appends finished (no deadlock)");
    assert_eq!(points, 40_000);
}

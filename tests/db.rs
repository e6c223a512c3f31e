//! The storage engine through the public library API: round trips,
//! later-wins, rollback, compaction, statistics and the in-process lock.

use std::collections::BTreeMap;

use tally::{Db, Error, Options, Point, TimeRange};

const HOUR: i64 = 3_600_000;
const T0: i64 = 1_550_052_000_000; // 2019-02-13T10:00:00Z

fn points(db: &Db, account: &str, metric: &str) -> Vec<(i64, u64)> {
    db.points(account, metric, TimeRange::ALL)
        .unwrap()
        .into_iter()
        .map(|p| (p.time, p.count))
        .collect()
}

#[test]
fn committed_points_read_back_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    {
        let db = Db::open(&path).unwrap();
        let mut w = db.writer().unwrap();
        for h in 0..48 {
            w.append("adela_mae", "followers", T0 + h * HOUR, 10_000 + h as u64)
                .unwrap();
            w.append("evada", "followers", T0 + h * HOUR, 60).unwrap();
            w.append("evada", "following", T0 + h * HOUR, 7).unwrap();
        }
        let summary = w.commit().unwrap();
        assert_eq!(summary.points, 144);
        assert_eq!(summary.new_series, 3);
        assert_eq!(points(&db, "evada", "following").len(), 48);
    }
    let db = Db::open(&path).unwrap();
    let got = points(&db, "adela_mae", "followers");
    assert_eq!(got.len(), 48);
    assert_eq!(got[3], (T0 + 3 * HOUR, 10_003));
    assert!(points(&db, "nobody", "followers").is_empty());
    assert!(points(&db, "evada", "nometric").is_empty());
    let stats = db.stats().unwrap();
    assert_eq!(
        (stats.series, stats.accounts, stats.metrics, stats.points),
        (3, 2, 2, 144)
    );
    assert_eq!(stats.time_range, Some((T0, T0 + 47 * HOUR)));
    assert_eq!(db.metrics(), vec!["followers", "following"]);
    assert_eq!(db.accounts().unwrap(), vec!["adela_mae", "evada"]);
    let series = db.series("followers", |a| a.starts_with('a')).unwrap();
    assert_eq!(series.len(), 1);
    let ranged = db
        .points(
            "adela_mae",
            "followers",
            TimeRange {
                from: T0 + HOUR,
                to: T0 + 3 * HOUR,
            },
        )
        .unwrap();
    assert_eq!(
        ranged,
        vec![
            Point {
                time: T0 + HOUR,
                count: 10_001
            },
            Point {
                time: T0 + 2 * HOUR,
                count: 10_002
            }
        ]
    );
}

#[test]
fn later_points_win_within_and_across_commits() {
    // [I5]
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let mut w = db.writer().unwrap();
    w.append("a", "followers", T0, 1).unwrap();
    w.append("a", "followers", T0, 2).unwrap();
    w.append("a", "followers", T0 + HOUR, 3).unwrap();
    w.commit().unwrap();
    w.append("a", "followers", T0 + HOUR, 30).unwrap();
    w.append("a", "followers", T0 - HOUR, 0).unwrap();
    w.commit().unwrap();
    assert_eq!(
        points(&db, "a", "followers"),
        vec![(T0 - HOUR, 0), (T0, 2), (T0 + HOUR, 30)]
    );
    let before = db.stats().unwrap();
    assert_eq!(before.segments, 2);
    drop(w);
    let summary = db.compact().unwrap();
    assert_eq!((summary.segments_before, summary.segments_after), (2, 1));
    assert_eq!(summary.points_after, 3);
    assert_eq!(
        points(&db, "a", "followers"),
        vec![(T0 - HOUR, 0), (T0, 2), (T0 + HOUR, 30)]
    );
    let reopened = Db::open(dir.path()).unwrap();
    assert_eq!(reopened.stats().unwrap().points, 3);
}

#[test]
fn dropping_a_writer_discards_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let mut w = db.writer().unwrap();
    w.append("kept", "followers", T0, 1).unwrap();
    w.commit().unwrap();
    w.append("lost", "followers", T0, 1).unwrap();
    drop(w);
    let db = Db::open(dir.path()).unwrap();
    assert_eq!(db.accounts().unwrap(), vec!["kept"]);
    // The next writer starts from the committed state.
    let mut w = db.writer().unwrap();
    w.append("again", "followers", T0, 5).unwrap();
    w.commit().unwrap();
    assert_eq!(db.accounts().unwrap(), vec!["again", "kept"]);
}

/// Spills run on a thread of their own while appends go on; dropping the
/// writer waits for the one in flight and removes every file of the batch.
#[test]
fn dropping_a_writer_with_spills_in_flight_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open_with(dir.path(), Options::default().memory_budget(64 * 1024)).unwrap();
    let files = || {
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let mut w = db.writer().unwrap();
    w.append("kept", "followers", T0, 1).unwrap();
    w.commit().unwrap();
    let before = files();
    for h in 0..20_000 {
        w.append(&format!("a{}", h % 300), "followers", T0 + h * HOUR, 7)
            .unwrap();
    }
    drop(w);
    assert_eq!(files(), before);
    assert_eq!(Db::open(dir.path()).unwrap().stats().unwrap().points, 1);
}

/// A spill that fails in the background is not lost: the append that
/// finds it fails, so does every append after it and the next commit, and
/// nothing of the batch becomes visible; the commit after that starts
/// afresh. The failure is made by taking the database folder away before
/// the batch spills, and putting it back before the commit.
#[test]
fn a_spill_that_fails_in_the_background_discards_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let away = dir.path().join("away");
    let db = Db::open_with(&path, Options::default().memory_budget(64 * 1024)).unwrap();
    let mut w = db.writer().unwrap();
    w.append("kept", "followers", T0, 1).unwrap();
    w.commit().unwrap();
    let files = || {
        let mut names: Vec<String> = std::fs::read_dir(&path)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let before = files();

    std::fs::rename(&path, &away).unwrap();
    // 64 KiB hold about 1,170 points: the first spill fails in the
    // background, and the append that starts the second one finds it.
    let mut first_error = None;
    for h in 0..5_000i64 {
        if let Err(e) = w.append(&format!("a{}", h % 300), "followers", T0 + h * HOUR, 7) {
            first_error = Some((h, e));
            break;
        }
    }
    let (at, error) = first_error.expect("the failed spill was reported by an append");
    assert!(matches!(error, Error::Writer(_)), "{error:?}");
    assert!(error.to_string().contains("discarded"), "{error}");
    assert!(at < 5_000);
    // Every append after it fails too: no part of the batch can be kept.
    let again = w.append("later", "followers", T0, 1).unwrap_err();
    assert!(matches!(again, Error::Writer(_)), "{again:?}");
    std::fs::rename(&away, &path).unwrap();
    let commit = w.commit().unwrap_err();
    assert!(matches!(commit, Error::Writer(_)), "{commit:?}");
    assert_eq!(db.stats().unwrap().points, 1);
    assert_eq!(files(), before);

    // The writer goes on with a new batch.
    w.append("fresh", "followers", T0, 5).unwrap();
    assert_eq!(w.commit().unwrap().points, 1);
    drop(w);
    let db = Db::open(&path).unwrap();
    assert_eq!(db.accounts().unwrap(), vec!["fresh", "kept"]);
    assert!(Db::verify(&path).unwrap().is_clean());
}

/// Points overwritten across background spills and commits: the latest
/// append of each (series, time) wins, against a plain model.
#[test]
fn overwrites_across_background_spills_keep_the_latest() {
    let dir = tempfile::tempdir().unwrap();
    // 1 KiB is the smallest log (256 points): many spills per batch.
    let db = Db::open_with(dir.path(), Options::default().memory_budget(1024)).unwrap();
    let mut model: BTreeMap<(u64, i64), u64> = BTreeMap::new();
    let mut w = db.writer().unwrap();
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    for round in 0..12u64 {
        for _ in 0..1_500 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let (account, hour, value) = (x % 40, ((x >> 8) % 30) as i64, (x >> 20) % 1000);
            w.append(&format!("a{account}"), "followers", T0 + hour * HOUR, value)
                .unwrap();
            model.insert((account, hour), value);
        }
        if round % 3 == 2 {
            w.commit().unwrap();
        }
    }
    w.commit().unwrap();
    for account in 0..40u64 {
        let want: Vec<(i64, u64)> = model
            .range((account, 0)..(account + 1, 0))
            .map(|(&(_, h), &v)| (T0 + h * HOUR, v))
            .collect();
        assert_eq!(points(&db, &format!("a{account}"), "followers"), want);
    }
    assert!(Db::verify(dir.path()).unwrap().is_clean());
}

#[test]
fn a_second_writer_is_refused_while_the_first_lives() {
    // [I6]
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let first = db.writer().unwrap();
    match db.writer() {
        Err(e @ Error::Locked { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains(&format!(
                    "database is locked (held by pid {})",
                    std::process::id()
                )),
                "{msg}"
            );
        }
        other => panic!("expected a lock error, got {other:?}"),
    }
    drop(first);
    assert!(db.writer().is_ok());
}

#[test]
fn bad_appends_are_refused_with_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let mut w = db.writer().unwrap();
    assert!(w.append("", "followers", T0, 1).is_err());
    assert!(w.append("a", "follower count", T0, 1).is_err());
    assert!(w.append("a", "followers", T0, u64::MAX).is_err());
    assert!(w.append("a", "followers", i64::MAX, 1).is_err());
    w.append("a", "followers", T0, i64::MAX as u64).unwrap();
    w.commit().unwrap();
    assert_eq!(points(&db, "a", "followers"), vec![(T0, i64::MAX as u64)]);
}

#[test]
fn a_batch_over_the_memory_budget_spills_into_several_segments_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open_with(dir.path(), Options::default().memory_budget(64 * 1024)).unwrap();
    let mut model = BTreeMap::new();
    let mut w = db.writer().unwrap();
    for h in 0..30i64 {
        for a in 0..400u64 {
            let account = format!("acct{a:04}");
            let value = a * 1000 + (h as u64 * 7919 + a) % 13;
            w.append(&account, "followers", T0 + h * HOUR, value)
                .unwrap();
            model.insert((account, h), value);
        }
    }
    // Nothing is visible before the commit even though segments were spilled.
    let reader = Db::open(dir.path()).unwrap();
    assert_eq!(reader.stats().unwrap().points, 0);
    let summary = w.commit().unwrap();
    assert!(summary.segments > 1, "expected spills, got {summary:?}");
    reader.refresh().unwrap();
    assert_eq!(reader.stats().unwrap().points, 12_000);
    for ((account, h), value) in model.iter().step_by(97) {
        let got = points(&reader, account, "followers");
        assert_eq!(got[*h as usize], (T0 + h * HOUR, *value));
    }
    let report = Db::verify(dir.path()).unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
    assert_eq!(report.points, 12_000);
}

/// One flush big enough to be cut into several chunks that are encoded on
/// several threads (more than 1024 series and more than 2^18 points), with
/// the points appended in a scrambled order and some overwritten: every
/// series reads back exactly as a plain model says, in one segment.
#[test]
fn a_flush_encoded_in_parallel_chunks_reads_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let (accounts, hours) = (3000u64, 120i64);
    let mut appends = Vec::new();
    for a in 0..accounts {
        for h in 0..hours {
            appends.push((a, h, a * 1_000 + h as u64));
        }
    }
    // A fixed xorshift shuffle: the log is far from series order.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in (1..appends.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        appends.swap(i, (x % (i as u64 + 1)) as usize);
    }
    // Every 10th account's hour 5 is appended again later with a new count.
    for a in (0..accounts).step_by(10) {
        appends.push((a, 5, 7));
    }
    let mut model: BTreeMap<(u64, i64), u64> = BTreeMap::new();
    let mut w = db.writer().unwrap();
    for &(a, h, v) in &appends {
        w.append(&format!("acct{a:05}"), "followers", T0 + h * HOUR, v)
            .unwrap();
        model.insert((a, h), v);
    }
    let summary = w.commit().unwrap();
    assert_eq!(summary.segments, 1, "{summary:?}");
    for a in 0..accounts {
        let want: Vec<(i64, u64)> = model
            .range((a, 0)..(a + 1, 0))
            .map(|(&(_, h), &v)| (T0 + h * HOUR, v))
            .collect();
        assert_eq!(
            points(&db, &format!("acct{a:05}"), "followers"),
            want,
            "account {a}"
        );
    }
    let report = Db::verify(dir.path()).unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
    assert_eq!(report.points, accounts * hours as u64);
}

#[test]
fn opening_a_missing_database_without_create_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let err = Db::open_with(dir.path().join("nope"), Options::default().create(false)).unwrap_err();
    assert!(err.to_string().contains("no database at"), "{err}");
}

#[test]
fn readers_see_whole_batches_while_a_writer_commits_and_compacts() {
    // [I2]: a reader refreshing at any moment sees a prefix of the batches,
    // each batch whole, never half of one.
    const BATCHES: u64 = 40;
    const PER_BATCH: u64 = 50;
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let path = dir.path().to_path_buf();
    let writer = std::thread::spawn(move || {
        let db = Db::open(&path).unwrap();
        let mut w = db.writer().unwrap();
        for k in 0..BATCHES {
            for i in 0..PER_BATCH {
                w.append(&format!("b{k:03}"), "followers", T0 + i as i64 * HOUR, k)
                    .unwrap();
            }
            w.commit().unwrap();
            if k % 10 == 9 {
                w.compact().unwrap();
            }
        }
    });
    let reader = Db::open(dir.path()).unwrap();
    let mut seen = 0;
    while seen < BATCHES {
        reader.refresh().unwrap();
        let table = reader.query("count(followers)").unwrap();
        let points = table.rows()[0][0].as_i64().unwrap() as u64;
        let accounts = reader.accounts().unwrap();
        assert_eq!(
            points,
            accounts.len() as u64 * PER_BATCH,
            "a batch is visible in part"
        );
        for (k, a) in accounts.iter().enumerate() {
            assert_eq!(a, &format!("b{k:03}"), "batches are not a prefix");
        }
        seen = accounts.len() as u64;
    }
    writer.join().unwrap();
    drop(db);
}

#[test]
fn a_cancelled_query_stops_with_cancelled() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let mut w = db.writer().unwrap();
    for a in 0..2000 {
        w.append(&format!("a{a}"), "followers", T0, 1).unwrap();
    }
    w.commit().unwrap();
    let flag = Arc::new(AtomicBool::new(false));
    let query = tally::Query::parse("drop(followers, 5%, 1h)")
        .unwrap()
        .cancel_on(Arc::clone(&flag));
    assert!(query.run(&db).is_ok());
    flag.store(true, Ordering::Relaxed);
    assert!(matches!(query.run(&db), Err(Error::Cancelled)));
}

#[test]
fn reversed_and_empty_ranges_select_no_points() {
    // [Q19a]: `from >= to` selects nothing, through `Db::points` and
    // `Query::range`, without a panic. The reversed range cuts the series'
    // points on both sides, which used to panic in the scanner.
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    for commit in 0..2 {
        let mut w = db.writer().unwrap();
        for h in 0..48 {
            w.append(
                "x",
                "followers",
                T0 + h * HOUR,
                1_000 + commit * 7 + h as u64,
            )
            .unwrap();
        }
        w.commit().unwrap();
    }
    let reversed = TimeRange {
        from: T0 + 24 * HOUR,
        to: T0 + 23 * HOUR,
    };
    let empty = TimeRange {
        from: T0 + 5 * HOUR,
        to: T0 + 5 * HOUR,
    };
    let widest_reversed = TimeRange {
        from: i64::MAX,
        to: i64::MIN,
    };
    for range in [reversed, empty, widest_reversed] {
        assert_eq!(db.points("x", "followers", range).unwrap(), [], "{range:?}");
        for text in [
            "followers{account=\"x\"}",
            "drop(followers, 1, 1h)",
            "latest(followers)",
        ] {
            let table = tally::Query::parse(text)
                .unwrap()
                .range(range)
                .run(&db)
                .unwrap();
            assert!(table.is_empty(), "{text} in {range:?}");
        }
        let count = tally::Query::parse("count(followers)")
            .unwrap()
            .range(range)
            .run(&db)
            .unwrap();
        assert_eq!(count.rows(), [vec![tally::Value::Int(0)]], "{range:?}");
    }
    // The range one hour long still holds its point.
    let one = TimeRange {
        from: T0 + 23 * HOUR,
        to: T0 + 24 * HOUR,
    };
    assert_eq!(
        db.points("x", "followers", one).unwrap(),
        [Point {
            time: T0 + 23 * HOUR,
            count: 1_007 + 23
        }]
    );
}

/// Rewrites the u64 at byte `at` of the committed MANIFEST of `dir` and
/// recomputes its checksum, as a forger would.
fn patch_manifest_u64(dir: &std::path::Path, at: usize, value: u64) {
    let path = dir.join("MANIFEST");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
    let body = bytes.len() - 4;
    let crc = crc32fast::hash(&bytes[..body]);
    bytes[body..].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
}

/// A database of two commits (two segments), its MANIFEST's u64 at `at`
/// then set to `value`.
fn two_segments_then_patch(dir: &std::path::Path, at: usize, value: u64) {
    let db = Db::open(dir).unwrap();
    for commit in 0..2 {
        let mut w = db.writer().unwrap();
        // Two times, so that each commit is a segment rather than a head
        // frame ([HD3]).
        w.append("x", "followers", T0 + commit * HOUR, 5).unwrap();
        w.append("x", "followers", T0 + commit * HOUR + 1, 5)
            .unwrap();
        w.commit().unwrap();
    }
    patch_manifest_u64(dir, at, value);
}

#[test]
fn a_commit_past_the_largest_generation_is_refused_as_damage() {
    // [M10]: generation 2^64 - 1 is read, but no commit can follow it; a
    // commit and a compaction used to overflow (a panic in debug builds, a
    // wrap to generation 0 in release ones).
    let dir = tempfile::tempdir().unwrap();
    two_segments_then_patch(dir.path(), 16, u64::MAX);
    let db = Db::open(dir.path()).unwrap();
    assert_eq!(
        db.points("x", "followers", TimeRange::ALL).unwrap().len(),
        4
    );
    let mut w = db.writer().unwrap();
    w.append("x", "followers", T0 + 9 * HOUR, 6).unwrap();
    let err = w.commit().unwrap_err().to_string();
    assert!(
        err.contains("MANIFEST: damaged: the generation is 18446744073709551615"),
        "{err}"
    );
    let err = w.compact().unwrap_err().to_string();
    assert!(
        err.contains("the generation is 18446744073709551615"),
        "{err}"
    );
    drop(w);
    // Nothing was committed, and what was written is gone.
    let db = Db::open(dir.path()).unwrap();
    assert_eq!(
        db.points("x", "followers", TimeRange::ALL).unwrap().len(),
        4
    );
    assert_eq!(db.stats().unwrap().segments, 2);
    // The commit's head frame was removed with the batch.
    assert!(
        std::fs::read_dir(dir.path())
            .unwrap()
            .all(|e| { !e.unwrap().file_name().to_string_lossy().ends_with(".thead") })
    );
}

#[test]
fn a_segment_number_past_16_digits_is_refused_as_damage() {
    // [M8], [M10]: at the next segment number 10^16 no number with 16
    // digits is left. A commit used to write `seg-10000000000000000.tseg`,
    // a name recovery does not recognise, and at 2^64 - 1 to overflow.
    let dir = tempfile::tempdir().unwrap();
    two_segments_then_patch(dir.path(), 48, 10_000_000_000_000_000);
    let db = Db::open(dir.path()).unwrap();
    let mut w = db.writer().unwrap();
    w.append("x", "followers", T0 + 9 * HOUR, 6).unwrap();
    let err = w.commit().unwrap_err().to_string();
    assert!(
        err.contains("MANIFEST: damaged: the next segment number is 10000000000000000"),
        "{err}"
    );
    let err = w.compact().unwrap_err().to_string();
    assert!(err.contains("the next segment number is"), "{err}");
    drop(w);
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tseg"))
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    // Past 10^16 the manifest itself is refused.
    let dir = tempfile::tempdir().unwrap();
    two_segments_then_patch(dir.path(), 48, u64::MAX);
    let err = Db::open(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("MANIFEST: damaged: the next segment number 18446744073709551615"),
        "{err}"
    );
}

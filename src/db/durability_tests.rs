//! Crash images and injected faults (docs/reliability.md, "Crash images
//! and injected faults"; docs/format.md, [I2], [I3], [I8], [R1]).
//!
//! One workload (hourly snapshots, a bulk rewrite that spills, new accounts,
//! a reopened writer, automatic merges, an explicit merge and a compaction)
//! runs on the recording file system of storage/fs/testing.rs.
//!
//! - **Crash images.** After every operation of the recording, the disks a
//!   power cut could leave (storage/fs/image.rs) are written out and opened:
//!   each must answer exactly one committed state (the last one committed,
//!   or the one being committed), verify clean, and take a new writer that
//!   removes every leftover and commits.
//! - **Faults.** The workload runs again with one operation failing (EIO
//!   once, or ENOSPC from then on, as a full disk does), for every operation
//!   it makes. Nothing may panic; every commit that fails leaves the
//!   database at its last committed state (or, when the error says so, at
//!   the new one); a fresh reader always sees what a model of the
//!   successful commits says; the writer goes on after the failure, and at
//!   the end the database verifies clean with no leftovers.

use std::collections::{BTreeMap, HashSet};
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::Arc;

use crate::TimeRange;
use crate::db::lock::LOCK;
use crate::db::manifest::MANIFEST;
use crate::db::snapshot::DICTIONARY;
use crate::db::{Db, Options, Writer};
use crate::storage::fs::FileSystem;
use crate::storage::fs::image::{Image, KeepAllTearLast, LoseAll, Random, image};
use crate::storage::fs::testing::{Fault, FaultKind, Op, RecordingFs};

const HOUR: i64 = 3_600_000;
/// 2019-02-13T00:00:00Z: epoch-aligned, so the hours close merge windows.
const T0: i64 = 1_550_016_000_000;

/// (metric, account, time) → count.
type Model = BTreeMap<(String, String, i64), u64>;

#[derive(Debug, Clone)]
enum Action {
    Commit(Vec<(String, String, i64, u64)>),
    Merge,
    Compact,
    /// Drops the writer and opens a new one (recovery runs).
    Reopen,
}

fn workload() -> Vec<Action> {
    let mut actions = Vec::new();
    let snapshot = |hour: i64, accounts: u64| {
        let mut points = Vec::new();
        for a in 0..accounts {
            let count = 1_000 + a * 37 + (hour as u64 * 11) % 97;
            points.push((
                "followers".to_string(),
                format!("acct{a:02}"),
                T0 + hour * HOUR,
                count,
            ));
            if a % 3 == 0 {
                points.push((
                    "posts".to_string(),
                    format!("acct{a:02}"),
                    T0 + hour * HOUR,
                    a + hour as u64,
                ));
            }
        }
        points
    };
    for hour in 0..4 {
        actions.push(Action::Commit(snapshot(hour, 12)));
    }
    actions.push(Action::Reopen);
    for hour in 4..7 {
        actions.push(Action::Commit(snapshot(hour, 15)));
    }
    // A bulk rewrite of old hours, larger than the smallest log (256
    // points), so that the batch spills into several segments.
    let mut bulk = Vec::new();
    for i in 0..600u64 {
        bulk.push((
            "followers".to_string(),
            format!("acct{:02}", i % 20),
            T0 + (i as i64 % 30) * HOUR,
            i * 3,
        ));
    }
    actions.push(Action::Commit(bulk));
    actions.push(Action::Merge);
    for hour in 7..13 {
        actions.push(Action::Commit(snapshot(hour, 16)));
    }
    actions.push(Action::Compact);
    // Head frames ([HD3]): a new head after the compaction, an append to
    // it, and a new head for the next week (T0 is a Wednesday; epoch
    // weeks begin on Thursdays).
    actions.push(Action::Commit(snapshot(13, 16)));
    actions.push(Action::Commit(snapshot(14, 16)));
    actions.push(Action::Commit(snapshot(24, 16)));
    // One batch of several snapshots ([HD3]): two frames appended to the
    // committed head, which the batch then finishes, one starting the next
    // week's head, and then an hour before them, which ends framing: the
    // hour it interrupted (193) and itself are a segment after the heads,
    // overriding hour 25.
    let mut several = Vec::new();
    for hour in [25, 26, 24 + 168, 25 + 168, 25] {
        several.extend(snapshot(hour, 17).into_iter().map(|mut p| {
            p.3 += 5;
            p
        }));
    }
    actions.push(Action::Commit(several));
    actions
}

/// A writer that makes frames of the workload's small snapshots as the
/// production writer does of large ones ([HD3]).
fn writer(db: &Db) -> crate::Result<Writer> {
    let mut writer = db.writer()?;
    writer.set_min_frame_points(1);
    Ok(writer)
}

fn options() -> Options {
    // The smallest budget: 256 logged points per segment.
    Options::default().memory_budget(1)
}

fn apply(model: &mut Model, points: &[(String, String, i64, u64)]) {
    for (metric, account, time, count) in points {
        model.insert((metric.clone(), account.clone(), *time), *count);
    }
}

fn contents(db: &Db) -> Result<Model, String> {
    let mut out = Model::new();
    for metric in db.metrics() {
        for s in db.series(&metric, |_| true).expect("the series are listed") {
            let points = db
                .points(&s.account, &metric, TimeRange::ALL)
                .map_err(|e| format!("reading {}/{metric}: {e}", s.account))?;
            for p in points {
                out.insert((metric.clone(), s.account.clone(), p.time), p.count);
            }
        }
    }
    Ok(out)
}

/// Every file in `dir` is one the committed state names.
fn no_leftovers(db: &Db) -> Result<(), String> {
    let snapshot = db.snapshot();
    let mut expected: HashSet<String> = [MANIFEST, DICTIONARY, LOCK]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for s in &snapshot.manifest.segments {
        expected.insert(s.file_name());
    }
    if let Some(index) = snapshot.manifest.index {
        expected.insert(crate::storage::dictionary::index::index_file_name(
            index.number,
        ));
    }
    let entries = std::fs::read_dir(db.path()).map_err(|e| e.to_string())?;
    for entry in entries {
        let name = entry.map_err(|e| e.to_string())?.file_name();
        let name = name.to_string_lossy().to_string();
        if !expected.contains(&name) {
            return Err(format!("{name} is left over"));
        }
    }
    Ok(())
}

/// Commits that survive or fail fast live on tmpfs when there is one.
fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(dir) = tempfile::tempdir_in(shm)
    {
        return dir;
    }
    tempfile::tempdir().expect("a temporary folder")
}

/// Runs the workload on `fs` with markers, and returns the states each
/// action left (state 0 is the empty database).
fn record(fs: &RecordingFs, dir: &Path) -> Vec<Model> {
    let shared: Arc<dyn FileSystem> = Arc::new(fs.clone());
    let db = Db::open_on(shared, dir, options()).expect("the database opens");
    let mut writer = writer(&db).expect("the writer opens");
    let mut states = vec![Model::new()];
    for action in workload() {
        let mut next = states.last().cloned().unwrap_or_default();
        let i = states.len();
        fs.mark(Op::Begin(i));
        match &action {
            Action::Commit(points) => {
                for (metric, account, time, count) in points {
                    writer
                        .append(account, metric, *time, *count)
                        .expect("appended");
                }
                writer.commit().expect("committed");
                apply(&mut next, points);
            }
            Action::Merge => {
                writer.merge().expect("merged");
            }
            Action::Compact => {
                writer.compact().expect("compacted");
            }
            Action::Reopen => {
                drop(writer);
                writer = self::writer(&db).expect("the writer reopens");
            }
        }
        fs.mark(Op::End(i));
        states.push(next);
    }
    states
}

/// Checks one crash image of the database at `dir`: it answers one of
/// `allowed`, verifies clean, and a new writer cleans up and commits.
fn check_image(image: &Image, dir: &Path, allowed: &[&Model]) -> Result<(), String> {
    let scratch = scratch();
    let target = scratch.path().join("db");
    std::fs::create_dir(&target).map_err(|e| e.to_string())?;
    if !image.materialize(dir, &target).map_err(|e| e.to_string())? {
        // The directory itself did not survive: only right for a database
        // that committed nothing.
        return if allowed.iter().any(|m| m.is_empty()) {
            Ok(())
        } else {
            Err("the database directory is gone".into())
        };
    }
    let db = Db::open_with(&target, options().create(false)).map_err(|e| format!("open: {e}"))?;
    let found = contents(&db)?;
    let Some(state) = allowed.iter().find(|m| ***m == found) else {
        return Err(format!(
            "the database holds {} points, which is no committed state (allowed: {:?} points)",
            found.len(),
            allowed.iter().map(|m| m.len()).collect::<Vec<_>>()
        ));
    };
    let report = Db::verify(&target).map_err(|e| format!("verify: {e}"))?;
    if !report.is_clean() {
        return Err(format!("verify: {:?}", report.problems));
    }
    let mut writer = db.writer().map_err(|e| format!("writer: {e}"))?;
    writer
        .append("after-crash", "followers", T0, 7)
        .map_err(|e| format!("append: {e}"))?;
    writer.commit().map_err(|e| format!("commit: {e}"))?;
    no_leftovers(&db)?;
    let mut expected = (*state).clone();
    expected.insert(("followers".into(), "after-crash".into(), T0), 7);
    if contents(&db)? != expected {
        return Err("the commit after the crash answers wrong".into());
    }
    Ok(())
}

fn image_key(image: &Image) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    image.hash(&mut hasher);
    hasher.finish()
}

/// `f` over `items` on one thread per core, in order. Not rayon: a check
/// commits, and a commit waits for the writer's own rayon pool; a rayon
/// worker that waits there steals the next check onto the same stack, and
/// enough of them overflow it.
fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut results: Vec<(usize, R)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break };
                        out.push((i, f(item)));
                    }
                    out
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// Random rounds per crash point; `TALLY_CRASH_IMAGE_ROUNDS` raises it for
/// a longer run (docs/reliability.md).
fn random_rounds() -> u64 {
    std::env::var("TALLY_CRASH_IMAGE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8)
}

#[test]
fn every_crash_image_is_exactly_one_committed_state() {
    let root = scratch();
    let dir = root.path().join("db");
    let fs = RecordingFs::new();
    let states = record(&fs, &dir);
    let ops = fs.ops();
    let rounds = random_rounds();
    // The crash points: after each operation (markers are not operations).
    let points: Vec<usize> = (0..=ops.len())
        .filter(|&k| k == 0 || !matches!(ops[k - 1], Op::Begin(_) | Op::End(_)))
        .collect();
    let mut images: Vec<(usize, String, Image)> = Vec::new();
    let mut seen = HashSet::new();
    for &k in &points {
        let prefix = &ops[..k];
        let mut variants: Vec<(String, Image)> = vec![
            ("lose-all".into(), image(prefix, &mut LoseAll)),
            (
                "keep-all-tear-last".into(),
                image(prefix, &mut KeepAllTearLast),
            ),
        ];
        for round in 0..rounds {
            let seed = (k as u64) << 16 | round | 1;
            variants.push((format!("random({seed})"), image(prefix, &mut Random(seed))));
        }
        for (name, img) in variants {
            if seen.insert(image_key(&img)) {
                images.push((k, name, img));
            }
        }
    }
    let failures: Vec<String> = parallel_map(&images, |(k, name, img)| {
        let prefix = &ops[..*k];
        let committed = prefix
            .iter()
            .rev()
            .find_map(|op| match op {
                Op::End(i) => Some(*i),
                _ => None,
            })
            .unwrap_or(0);
        let in_flight = prefix.iter().rev().find_map(|op| match op {
            Op::Begin(i) if *i > committed => Some(*i),
            _ => None,
        });
        let mut allowed = vec![&states[committed]];
        if let Some(i) = in_flight {
            allowed.push(&states[i]);
        }
        check_image(img, &dir, &allowed).err().map(|e| {
            format!(
                "after operation {k} ({:?}), image {name}: {e}",
                prefix.last()
            )
        })
    })
    .into_iter()
    .flatten()
    .collect();
    eprintln!(
        "crash images: {} operations, {} crash points, {} distinct images checked, {} failures",
        fs.count(),
        points.len(),
        images.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The workload must be worth checking: it merged, spilled and appended
    // frames to heads.
    assert!(images.len() > 200, "only {} images", images.len());
    let head_appends = ops
        .iter()
        .filter(|op| {
            matches!(op, Op::OpenAppend { path, created: false, .. }
                if path.extension().is_some_and(|e| e == "thead"))
        })
        .count();
    assert!(head_appends >= 5, "only {head_appends} appends to heads");
}

/// What one faulty run found wrong, if anything.
fn run_with_fault(fault: Option<Fault>, short_writes: bool) -> Result<u64, String> {
    let root = scratch();
    let dir = root.path().join("db");
    let fs = RecordingFs::new();
    fs.short_writes(short_writes);
    if let Some(fault) = fault {
        fs.inject(fault);
    }
    let shared: Arc<dyn FileSystem> = Arc::new(fs.clone());
    let db = match Db::open_on(Arc::clone(&shared), &dir, options()) {
        Ok(db) => db,
        Err(_) if fs.fired() > 0 => {
            fs.clear_fault();
            Db::open_on(Arc::clone(&shared), &dir, options()).map_err(|e| format!("open: {e}"))?
        }
        Err(e) => return Err(format!("open: {e}")),
    };
    let mut model = Model::new();
    let mut errors = 0u64;
    let mut writer: Option<Writer> = None;
    for (step, action) in workload().into_iter().enumerate() {
        let fired_before = fs.fired();
        let outcome: crate::Result<()> = (|| {
            if writer.is_none() {
                writer = Some(self::writer(&db)?);
            }
            let Some(w) = writer.as_mut() else {
                unreachable!("set above")
            };
            match &action {
                Action::Commit(points) => {
                    let mut appended = Ok(());
                    for (metric, account, time, count) in points {
                        appended = w.append(account, metric, *time, *count);
                        if appended.is_err() {
                            break;
                        }
                    }
                    // An append that fails (a spill that failed) leaves the
                    // batch discarded; the commit reports it.
                    let committed = w.commit();
                    // An error after the point of no return (the writer
                    // stops), or of the merge after the commit, says the
                    // batch was committed.
                    let said_committed = committed
                        .as_ref()
                        .is_err_and(|e| e.to_string().starts_with("the batch was committed"));
                    if (committed.is_ok() && appended.is_ok()) || said_committed || w.is_stopped() {
                        apply(&mut model, points);
                    }
                    appended.and(committed.map(|_| ()))
                }
                Action::Merge => w.merge().map(|_| ()),
                Action::Compact => w.compact().map(|_| ()),
                Action::Reopen => {
                    writer = None;
                    writer = Some(self::writer(&db)?);
                    Ok(())
                }
            }
        })();
        if let Err(e) = &outcome {
            errors += 1;
            if fs.fired() == fired_before {
                return Err(format!("step {step} failed with no fault injected: {e}"));
            }
            if writer.as_ref().is_some_and(Writer::is_stopped) {
                writer = None;
            }
            // A full disk is freed after the first error it causes.
            fs.clear_fault();
        }
        // What another process opening the database now sees.
        let fresh = Db::open_with(&dir, options().create(false))
            .map_err(|e| format!("step {step}: a reader cannot open: {e}"))?;
        let seen = contents(&fresh)?;
        if seen != model {
            return Err(format!(
                "step {step} ({}): a reader sees {} points, the model {} ({:?})",
                match action {
                    Action::Commit(_) => "commit",
                    Action::Merge => "merge",
                    Action::Compact => "compact",
                    Action::Reopen => "reopen",
                },
                seen.len(),
                model.len(),
                outcome.err().map(|e| e.to_string())
            ));
        }
    }
    drop(writer);
    fs.clear_fault();
    let report = Db::verify(&dir).map_err(|e| format!("verify: {e}"))?;
    if !report.is_clean() {
        return Err(format!("verify: {:?}", report.problems));
    }
    let db = Db::open_on(shared, &dir, options()).map_err(|e| format!("reopen: {e}"))?;
    let mut w = db.writer().map_err(|e| format!("last writer: {e}"))?;
    w.append("last", "followers", T0, 1)
        .map_err(|e| format!("last append: {e}"))?;
    w.commit().map_err(|e| format!("last commit: {e}"))?;
    no_leftovers(&db)?;
    model.insert(("followers".into(), "last".into(), T0), 1);
    if contents(&db)? != model {
        return Err("the database does not answer the model at the end".into());
    }
    Ok(errors)
}

/// Short writes (a write that takes half of what it is given, which POSIX
/// allows) lose nothing.
#[test]
fn short_writes_lose_nothing() {
    assert_eq!(run_with_fault(None, true), Ok(0));
}

/// Every operation of the workload fails once with EIO, and in another run
/// with ENOSPC (half its bytes written, and every operation after it
/// failing until the disk is freed after the first error).
#[test]
fn a_failure_of_any_operation_loses_nothing_committed_and_commits_nothing_failed() {
    let recording = RecordingFs::new();
    let root = scratch();
    record(&recording, &root.path().join("db"));
    let total = recording.count();
    let mut runs = Vec::new();
    for at in 0..total {
        for (kind, sticky) in [(FaultKind::Io, false), (FaultKind::NoSpace, true)] {
            runs.push(Fault { at, kind, sticky });
        }
    }
    let results: Vec<(Fault, Result<u64, String>)> =
        parallel_map(&runs, |&fault| (fault, run_with_fault(Some(fault), false)));
    let failed_commits: u64 = results.iter().filter_map(|(_, r)| r.as_ref().ok()).sum();
    let failures: Vec<String> = results
        .iter()
        .filter_map(|(fault, r)| r.as_ref().err().map(|e| format!("{fault:?}: {e}")))
        .collect();
    eprintln!(
        "faults: {} operations, {} runs, {} actions failed cleanly, {} failures",
        total,
        runs.len(),
        failed_commits,
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

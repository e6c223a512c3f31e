//! The model-based property test of merging: random sequences of commits
//! (snapshot-shaped and bulk, overlapping times, overwrites), merges,
//! compactions and reopenings, after each of which the database must answer
//! exactly as a plain map does, and the merge policy must have nothing left
//! to do ([MG2], [MG3], [MG4]).

use std::collections::BTreeMap;

use proptest::prelude::*;

use crate::db::merge;
use crate::{Db, Options, TimeRange};

const HOUR: i64 = 3_600_000;
/// An epoch-aligned start (2019-02-13T00:00:00Z, a whole day), so that the
/// tests' hours fall into windows the way real hourly data does.
const T0: i64 = 1_550_016_000_000;
const ACCOUNTS: u64 = 12;

#[derive(Debug, Clone)]
enum Step {
    /// Every account (but those skipped) counted at one hour.
    Snapshot {
        hour: i64,
        skip: u64,
        seed: u64,
    },
    /// Several snapshots in one batch ([HD3]), moving `ahead` hours each,
    /// back in time too (an hour the batch or an earlier one already
    /// holds, which the later points override).
    Snapshots {
        hours: Vec<(i64, u64, u64)>,
    },
    /// Points at many hours, possibly rewriting old ones.
    Bulk {
        points: Vec<(u64, i64, u64)>,
    },
    Compact,
    Reopen,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0i64..3, 0u64..4, any::<u64>()).prop_map(|(ahead, skip, seed)| Step::Snapshot {
            hour: ahead,
            skip,
            seed
        }),
        2 => prop::collection::vec((-2i64..30, 0u64..4, any::<u64>()), 1..6)
            .prop_map(|hours| Step::Snapshots { hours }),
        2 => prop::collection::vec((0..ACCOUNTS, 0i64..24 * 40, 0u64..1_000), 1..40)
            .prop_map(|points| Step::Bulk { points }),
        1 => Just(Step::Compact),
        1 => Just(Step::Reopen),
    ]
}

type Model = BTreeMap<(String, i64), u64>;

fn contents(db: &Db) -> Model {
    let mut out = Model::new();
    for s in db
        .series("followers", |_| true)
        .expect("the series are listed")
    {
        for p in db.points(&s.account, "followers", TimeRange::ALL).unwrap() {
            out.insert((s.account.clone(), p.time), p.count);
        }
    }
    out
}

/// Appends the snapshot of every account (but those skipped) at `hour`.
fn snapshot(writer: &mut crate::Writer, model: &mut Model, hour: i64, skip: u64, seed: u64) {
    for a in 0..ACCOUNTS {
        if skip > 0 && a % (skip + 2) == 0 {
            continue;
        }
        let account = format!("a{a}");
        let value = seed.wrapping_mul(a + 1) % 10_000;
        let time = T0 + hour * HOUR;
        writer.append(&account, "followers", time, value).unwrap();
        model.insert((account, time), value);
    }
}

/// Runs `steps` with a memory budget of `budget` bytes, the writer making
/// frames of groups of `min_frame_points` points or more ([HD3]).
fn run(steps: Vec<Step>, budget: usize, min_frame_points: usize) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let options = Options::default().memory_budget(budget);
    let mut db = Db::open_with(dir.path(), options.clone()).unwrap();
    let open_writer = |db: &Db| {
        let mut writer = db.writer().unwrap();
        writer.set_min_frame_points(min_frame_points);
        writer
    };
    let mut writer = open_writer(&db);
    let mut model = Model::new();
    // Snapshots move forward an hour or two at a time, the way a crawler's
    // do; bulk steps write anywhere in the first 40 days.
    let mut now = 0i64;
    // Whether the last merge step stopped at its bound with work left; a
    // reopening does not change that, a compaction leaves nothing.
    let mut pending = false;
    for (i, step) in steps.into_iter().enumerate() {
        match step {
            Step::Snapshot { hour, skip, seed } => {
                now += hour;
                snapshot(&mut writer, &mut model, now, skip, seed);
                pending = writer.commit().unwrap().merged.pending;
            }
            Step::Snapshots { hours } => {
                for (ahead, skip, seed) in hours {
                    now = (now + ahead).max(0);
                    snapshot(&mut writer, &mut model, now, skip, seed);
                }
                pending = writer.commit().unwrap().merged.pending;
            }
            Step::Bulk { points } => {
                for (a, hour, value) in points {
                    let account = format!("a{a}");
                    let time = T0 + hour * HOUR;
                    writer.append(&account, "followers", time, value).unwrap();
                    model.insert((account, time), value);
                }
                pending = writer.commit().unwrap().merged.pending;
            }
            Step::Compact => {
                writer.compact().unwrap();
                pending = false;
                prop_assert!(db.snapshot().manifest.segments.len() <= 1);
            }
            Step::Reopen => {
                drop(writer);
                db = Db::open_with(dir.path(), options.clone()).unwrap();
                writer = open_writer(&db);
            }
        }
        prop_assert_eq!(contents(&db), model.clone(), "after step {}", i);
        let segments = &db.snapshot().manifest.segments;
        if !pending {
            prop_assert_eq!(merge::plan(segments), None, "after step {}", i);
        }
    }
    drop(writer);
    let report = Db::verify(dir.path()).unwrap();
    prop_assert!(report.is_clean(), "{:?}", report.problems);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn merged_databases_answer_as_the_model(steps in prop::collection::vec(step(), 1..120)) {
        run(steps, 1 << 20, 1)?;
    }

    #[test]
    fn merged_databases_answer_as_the_model_when_batches_spill(
        steps in prop::collection::vec(step(), 1..60),
    ) {
        // A budget of a few hundred points: bulk steps spill into several
        // segments of one commit.
        run(steps, 300 * 56, 1)?;
    }

    #[test]
    fn merged_databases_answer_as_the_model_with_production_frame_sizes(
        steps in prop::collection::vec(step(), 1..60),
    ) {
        // Groups of 12 points never reach the production minimum: every
        // batch of several times is written as segments.
        run(steps, 1 << 20, 1024)?;
    }
}

#[test]
fn a_week_of_hourly_snapshots_stays_within_the_bound() {
    // [MG2]: with one commit an hour, a 6-hour window holds at most 7
    // hourly segments, a day 3 six-hour ones, a week 6 days, 28 days 3
    // weeks: never more than 7 + 3 + 6 + 3 segments below the 28-day tier.
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let mut writer = db.writer().unwrap();
    let mut most = 0;
    for hour in 0..24 * 30 {
        for a in 0..3 {
            writer
                .append(&format!("a{a}"), "followers", T0 + hour * HOUR, hour as u64)
                .unwrap();
        }
        writer.commit().unwrap();
        most = most.max(db.snapshot().manifest.segments.len());
    }
    assert!(most <= 7 + 3 + 6 + 3, "{most} segments at once");
    assert_eq!(db.stats().unwrap().points, 3 * 24 * 30);
}

#[test]
fn hourly_snapshots_append_to_one_head_per_epoch_week() {
    // [HD3]: T0 is a Wednesday and epoch weeks begin on Thursdays, so the
    // hours up to 23 are the first week's head, and hours 24 to 24 + 36
    // (Thursday 00:00 to Friday 12:00, across a day boundary) all append
    // to the second week's head; the first, alone in its closed week,
    // stays a head ([MG2] merges two or more).
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let mut writer = db.writer().unwrap();
    let heads = |db: &Db| -> Vec<(i64, i64)> {
        let snapshot = db.snapshot();
        let segments = &snapshot.manifest.segments;
        assert!(segments.iter().all(|s| s.head), "{segments:?}");
        segments.iter().map(|s| (s.t_min, s.t_max)).collect()
    };
    for hour in (20..24).chain(24..=60) {
        for a in 0..3 {
            writer
                .append(
                    &format!("a{a}"),
                    "followers",
                    T0 + hour * HOUR,
                    hour as u64 + a,
                )
                .unwrap();
        }
        writer.commit().unwrap();
        let expected = if hour < 24 {
            vec![(T0 + 20 * HOUR, T0 + hour * HOUR)]
        } else {
            vec![
                (T0 + 20 * HOUR, T0 + 23 * HOUR),
                (T0 + 24 * HOUR, T0 + hour * HOUR),
            ]
        };
        assert_eq!(heads(&db), expected, "after hour {hour}");
    }
    assert_eq!(db.stats().unwrap().points, 3 * (4 + 37));
}

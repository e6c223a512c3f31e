//! End-to-end property: random databases built from several commits (with
//! overwritten points), queried through parse → check → eval over real
//! segments, give the rows a plain O(n²) reference written straight from
//! docs/query-language.md [Q20]–[Q22] and [Q19] gives on the model.

use std::collections::BTreeMap;

use proptest::prelude::*;
use tally::{Db, Query, TimeRange, Value};

const MIN: i64 = 60_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Episode {
    start: i64,
    end: i64,
    before: i64,
    after: i64,
}

/// [Q20] literally: for every point, scan its window for the peak.
fn reference_drops(points: &[(i64, i64)], pct: Option<i64>, abs: i64, window: i64) -> Vec<Episode> {
    let qualifies: Vec<Option<(i64, i64)>> = (0..points.len())
        .map(|i| {
            let (ti, vi) = points[i];
            let mut peak: Option<(i64, i64)> = None;
            for &(tj, vj) in &points[..i] {
                if ti - window <= tj && tj < ti && peak.is_none_or(|p| vj >= p.1) {
                    peak = Some((tj, vj));
                }
            }
            let (pt, pv) = peak?;
            let loss = pv - vi;
            let ok = loss > 0
                && match pct {
                    Some(p) => 100 * loss >= p * pv,
                    None => loss >= abs,
                };
            ok.then_some((pt, pv))
        })
        .collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < points.len() {
        let Some((pt, pv)) = qualifies[i] else {
            i += 1;
            continue;
        };
        let mut k = i;
        while k + 1 < points.len() && qualifies[k + 1].is_some() {
            k += 1;
        }
        let mut trough = points[i];
        for &p in &points[i..=k] {
            if p.1 < trough.1 {
                trough = p;
            }
        }
        out.push(Episode {
            start: pt,
            end: trough.0,
            before: pv,
            after: trough.1,
        });
        i = k + 1;
    }
    out
}

/// [Q21]: the first later point within the duration that regains enough.
fn reference_recovery(
    points: &[(i64, i64)],
    e: &Episode,
    within: i64,
    fraction: i64,
) -> Option<i64> {
    let lost = e.before - e.after;
    points
        .iter()
        .find(|&&(t, v)| e.end < t && t <= e.end + within && 100 * (v - e.after) >= fraction * lost)
        .map(|&(t, _)| t)
}

fn lost_pct(e: &Episode) -> i64 {
    // Half away from zero on hundredths, in integers.
    let lost = e.before - e.after;
    (20_000 * lost + e.before) / (2 * e.before)
}

type Model = BTreeMap<(String, i64), i64>;

fn arb_db() -> impl Strategy<Value = Vec<Vec<(u8, i64, i64)>>> {
    // Commits of (account, minute, value); small ranges force ties,
    // overwrites and overlaps between segments.
    prop::collection::vec(
        prop::collection::vec((0u8..3, 0i64..40, 0i64..12), 0..40),
        1..4,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn drops_and_recoveries_match_the_reference(
        commits in arb_db(),
        pct in prop::option::of(1i64..60),
        abs in 1i64..6,
        window in 1i64..8,
        within in 0i64..10,
        fraction in 1i64..=100,
        from in prop::option::of(0i64..20),
        to in prop::option::of(20i64..41),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        let mut model = Model::new();
        let mut w = db.writer().unwrap();
        for commit in &commits {
            for &(a, m, v) in commit {
                let account = format!("acct{a}");
                w.append(&account, "followers", m * MIN, v as u64).unwrap();
                model.insert((account, m * MIN), v);
            }
            w.commit().unwrap();
        }
        drop(w);
        let range = TimeRange {
            from: from.map_or(i64::MIN, |f| f * MIN),
            to: to.map_or(i64::MAX, |t| t * MIN),
        };
        let threshold = match pct { Some(p) => format!("{p}%"), None => abs.to_string() };
        let drop_q = format!("drop(followers, {threshold}, {window}m)");

        let mut expected_drops = Vec::new();
        let mut expected_recovered = Vec::new();
        let mut expected_not = Vec::new();
        for a in 0..3u8 {
            let account = format!("acct{a}");
            let points: Vec<(i64, i64)> = model
                .iter()
                .filter(|((acc, t), _)| *acc == account && range.from <= *t && *t < range.to)
                .map(|((_, t), v)| (*t, *v))
                .collect();
            for e in reference_drops(&points, pct, abs, window * MIN) {
                let row = vec![
                    Value::Text(account.clone()), Value::Text("followers".into()),
                    Value::Time(e.start), Value::Time(e.end),
                    Value::Int(e.before), Value::Int(e.after),
                    Value::Int(e.before - e.after), Value::Percent(lost_pct(&e)),
                ];
                expected_drops.push(row.clone());
                match reference_recovery(&points, &e, within * MIN, fraction) {
                    Some(t) => {
                        let mut r = row;
                        r.push(Value::Time(t));
                        r.push(Value::Int((t - e.end) / 1000));
                        expected_recovered.push(r);
                    }
                    None => expected_not.push(row),
                }
            }
        }
        let run = |q: &str| Query::parse(q).unwrap().range(range).run(&db).unwrap().rows().to_vec();
        prop_assert_eq!(run(&drop_q), expected_drops);
        let within_q = if within == 0 { "0s".to_string() } else { format!("{within}m") };
        if within > 0 {
            prop_assert_eq!(run(&format!("recovered_within({drop_q}, {within_q}, {fraction}%)")), expected_recovered);
            prop_assert_eq!(run(&format!("not recovered_within({drop_q}, {within_q}, {fraction}%)")), expected_not);
        }
        // The whole database round-trips too.
        let points = run("followers");
        let model_rows: Vec<Vec<Value>> = model
            .iter()
            .filter(|((_, t), _)| range.from <= *t && *t < range.to)
            .map(|((a, t), v)| vec![Value::Text(a.clone()), Value::Text("followers".into()), Value::Time(*t), Value::Int(*v)])
            .collect();
        prop_assert_eq!(points, model_rows);
    }
}

/// A time for [Q19a]: a minute of the data or just outside it, or an end
/// of the `i64` line.
fn arb_time() -> impl Strategy<Value = i64> {
    prop_oneof![
        1 => Just(i64::MIN),
        1 => Just(i64::MAX),
        8 => (-5i64..165).prop_map(|m| m * MIN),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// [Q19a]: any range, reversed and empty ones included, selects exactly
    /// the points a plain filter `from <= t && t < to` keeps, through
    /// `Db::points` and through a query, over segments that overlap (so the
    /// merging path is taken too) or, with `in_time_order`, whose commits
    /// follow one another in time (each commit 40 minutes after the one
    /// before, so a series' points are read from several segments and
    /// joined end to end). It used to panic on a reversed range that cut a
    /// series' points.
    #[test]
    fn any_range_selects_what_a_plain_filter_keeps(
        commits in arb_db(),
        in_time_order in any::<bool>(),
        ranges in prop::collection::vec((arb_time(), arb_time()), 1..12),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        let mut model = Model::new();
        let mut w = db.writer().unwrap();
        for (k, commit) in commits.iter().enumerate() {
            let shift = if in_time_order { 40 * k as i64 } else { 0 };
            for &(a, m, v) in commit {
                let account = format!("acct{a}");
                let t = (m + shift) * MIN;
                w.append(&account, "followers", t, v as u64).unwrap();
                model.insert((account, t), v);
            }
            w.commit().unwrap();
        }
        drop(w);
        for (from, to) in ranges {
            let range = TimeRange { from, to };
            let kept = |t: i64| from <= t && t < to;
            for a in 0..3u8 {
                let account = format!("acct{a}");
                let got: Vec<(i64, i64)> = db
                    .points(&account, "followers", range)
                    .unwrap()
                    .into_iter()
                    .map(|p| (p.time, p.count as i64))
                    .collect();
                let expected: Vec<(i64, i64)> = model
                    .iter()
                    .filter(|((acc, t), _)| *acc == account && kept(*t))
                    .map(|((_, t), v)| (*t, *v))
                    .collect();
                prop_assert_eq!(got, expected, "{} in {:?}", account, range);
            }
            let rows = Query::parse("followers").unwrap().range(range).run(&db).unwrap();
            let expected = model.keys().filter(|(_, t)| kept(*t)).count();
            prop_assert_eq!(rows.len(), expected, "{:?}", range);
        }
    }
}

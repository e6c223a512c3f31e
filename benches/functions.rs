//! Micro-benchmarks of the series functions on a seeded synthetic set of
//! realistic hourly follower series: power-law sizes and lengths, about 90%
//! of hourly deltas zero, one purge (a permanent step down) and one glitch (a
//! dip that recovers hours later) per series, and a few missing hours.
//!
//! Throughput is in input points, so every figure reads as points per
//! second for one core. Run with `cargo bench --bench functions`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tally::bench_support_functions::{
    DropFinder, Episode, Percent, SeriesBuf, Threshold, WindowExtremes, change,
    not_recovered_within, recovered_within, resample,
};

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
/// 2019-01-01T00:00:00Z in milliseconds.
const EPOCH_2019: i64 = 1_546_300_800_000;

/// splitmix64: a tiny, well-mixed, seedable generator, enough for test data
/// and no dependency.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform number in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A uniform integer in [0, n), n > 0.
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// A Pareto-distributed number of at least `min` with tail index `alpha`.
    fn pareto(&mut self, min: f64, alpha: f64) -> f64 {
        min / (1.0 - self.unit()).powf(1.0 / alpha)
    }
}

/// One series: its two decoded columns.
struct Series {
    times: Vec<i64>,
    values: Vec<i64>,
}

/// An hourly follower count over `hours` hours.
fn follower_series(rng: &mut SplitMix64, hours: usize) -> Series {
    let mut followers = rng.pareto(200.0, 1.1).min(200e6) as i64;
    // Growth per nonzero hour, scaled to the account's size.
    let step = (followers / 5000).max(1) as u64;
    let purge_at = rng.below(hours as u64) as usize;
    let purge_share = 5 + rng.below(26) as i64; // 5% to 30%
    let glitch_at = rng.below(hours as u64) as usize;
    let glitch_hours = 1 + rng.below(6) as usize;
    let glitch_keep = rng.below(60) as i64; // the dip shows 0% to 59% of the count
    let start = EPOCH_2019 + rng.below(2 * 365 * 24) as i64 * HOUR;
    let mut series = Series {
        times: Vec::with_capacity(hours),
        values: Vec::with_capacity(hours),
    };
    for hour in 0..hours {
        // About 90% of hours see no change; the rest mostly gain a little.
        if rng.below(10) == 0 {
            let delta = rng.below(2 * step + 1) as i64 - (step as i64) / 2;
            followers = (followers + delta).max(0);
        }
        if hour == purge_at {
            followers -= followers * purge_share / 100;
        }
        // A few hours are never sampled.
        if rng.below(50) == 0 {
            continue;
        }
        let shown = if (glitch_at..glitch_at + glitch_hours).contains(&hour) {
            followers * glitch_keep / 100
        } else {
            followers
        };
        // Samples land somewhere in the first two minutes of the hour.
        let jitter = rng.below(120_000) as i64;
        series.times.push(start + hour as i64 * HOUR + jitter);
        series.values.push(shown);
    }
    series
}

/// A harder, less realistic series: a random walk that moves every hour,
/// as often down as up, so that most points are below their window's peak
/// and the peak changes often. It bounds how much slower `drop()` gets on
/// noisy data.
fn noisy_series(rng: &mut SplitMix64, hours: usize) -> Series {
    let mut value = 1_000_000i64;
    let start = EPOCH_2019;
    let mut series = Series {
        times: Vec::with_capacity(hours),
        values: Vec::with_capacity(hours),
    };
    for hour in 0..hours {
        value = (value + rng.below(4001) as i64 - 2000).max(0);
        series.times.push(start + hour as i64 * HOUR);
        series.values.push(value);
    }
    series
}

/// The benchmark corpus: series of power-law lengths between a week and
/// three years of hourly samples, about a million points in all, small
/// enough to stay in the last-level cache as a freshly decoded series would
/// be in the evaluator.
fn corpus() -> Vec<Series> {
    let mut rng = SplitMix64(0x7A11_7A11_5EED);
    let mut all = Vec::new();
    let mut points = 0;
    while points < 1_000_000 {
        let hours = rng.pareto(168.0, 0.9).min(3.0 * 365.0 * 24.0) as usize;
        let series = follower_series(&mut rng, hours);
        points += series.times.len();
        all.push(series);
    }
    all
}

fn points(corpus: &[Series]) -> u64 {
    corpus.iter().map(|s| s.times.len() as u64).sum()
}

fn bench_drop(c: &mut Criterion) {
    let corpus = corpus();
    let n = points(&corpus);
    let long = {
        let mut rng = SplitMix64(42);
        vec![follower_series(&mut rng, 3 * 365 * 24)]
    };
    let noisy = {
        let mut rng = SplitMix64(43);
        vec![noisy_series(&mut rng, 3 * 365 * 24)]
    };
    let mut group = c.benchmark_group("drop");
    group.measurement_time(Duration::from_secs(5));
    let five_pct = Threshold::Percent(Percent {
        mantissa: 5,
        scale: 0,
    });
    for (name, series, threshold) in [
        ("5pct_1d", &corpus, five_pct),
        ("abs1000_1d", &corpus, Threshold::Absolute(1000)),
        ("5pct_1d_one_3y_series", &long, five_pct),
        ("5pct_1d_noisy_walk_3y", &noisy, five_pct),
        (
            "0.1pct_1d_noisy_walk_3y",
            &noisy,
            Threshold::Percent(Percent {
                mantissa: 1,
                scale: 1,
            }),
        ),
    ] {
        group.throughput(Throughput::Elements(points(series)));
        let mut finder = DropFinder::new();
        let mut episodes = Vec::new();
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut found = 0;
                for s in series.iter() {
                    episodes.clear();
                    finder.find(
                        black_box(&s.times),
                        black_box(&s.values),
                        threshold,
                        DAY,
                        &mut episodes,
                    );
                    found += episodes.len();
                }
                found
            })
        });
    }
    group.finish();

    // Recovery works on the episodes of `drop(followers, 5%, 1d)`, found
    // once outside the measurement; throughput still counts series points.
    let mut finder = DropFinder::new();
    let episodes: Vec<Vec<Episode>> = corpus
        .iter()
        .map(|s| {
            let mut out = Vec::new();
            finder.find(&s.times, &s.values, five_pct, DAY, &mut out);
            out
        })
        .collect();
    let total: usize = episodes.iter().map(Vec::len).sum();
    eprintln!(
        "corpus: {} series, {n} points, {total} episodes of drop(5%, 1d)",
        corpus.len()
    );
    let mut group = c.benchmark_group("recovery");
    group.throughput(Throughput::Elements(n));
    let mut recovered = Vec::new();
    group.bench_function("recovered_within_2d", |b| {
        b.iter(|| {
            let mut count = 0;
            for (s, eps) in corpus.iter().zip(&episodes) {
                recovered.clear();
                recovered_within(
                    black_box(&s.times),
                    black_box(&s.values),
                    eps,
                    2 * DAY,
                    Percent::FULL,
                    &mut recovered,
                );
                count += recovered.len();
            }
            count
        })
    });
    let mut not = Vec::new();
    group.bench_function("not_recovered_within_2d_90pct", |b| {
        b.iter(|| {
            let mut count = 0;
            for (s, eps) in corpus.iter().zip(&episodes) {
                not.clear();
                not_recovered_within(
                    black_box(&s.times),
                    black_box(&s.values),
                    eps,
                    2 * DAY,
                    Percent {
                        mantissa: 90,
                        scale: 0,
                    },
                    &mut not,
                );
                count += not.len();
            }
            count
        })
    });
    group.finish();

    let mut group = c.benchmark_group("series");
    group.throughput(Throughput::Elements(n));
    let mut out = SeriesBuf::new();
    let mut extremes = WindowExtremes::new();
    group.bench_function("change_1d", |b| {
        b.iter(|| {
            for s in &corpus {
                out.clear();
                change(black_box(&s.times), black_box(&s.values), DAY, &mut out);
            }
            out.len()
        })
    });
    group.bench_function("max_over_1d", |b| {
        b.iter(|| {
            for s in &corpus {
                out.clear();
                extremes.max_over(black_box(&s.times), black_box(&s.values), DAY, &mut out);
            }
            out.len()
        })
    });
    group.bench_function("resample_1d", |b| {
        b.iter(|| {
            for s in &corpus {
                out.clear();
                resample(black_box(&s.times), black_box(&s.values), DAY, &mut out);
            }
            out.len()
        })
    });
    group.finish();
}

criterion_group!(benches, bench_drop);
criterion_main!(benches);

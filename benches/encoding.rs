//! Size and speed of the column encodings (docs/format.md, "Column
//! encodings") on realistic follower-count series.
//!
//! The data set is generated from a fixed seed, so every run measures the
//! same bytes: hourly samples over 30 days (720 points a series, fewer where
//! the scraper missed hours), account sizes drawn from a power law between
//! 1e2 and 1e7, follows and unfollows as Poisson arrivals proportional to
//! the account's size (so the median account changes in about one hour out
//! of ten), a slow monthly trend, one purge (a permanent step down) and one
//! glitch (a dip that comes back) per series.
//!
//! Run with `cargo bench --bench encoding`; the data set's bytes per point
//! are printed before the timings, and `TALLY_BENCH_CHURN=1.3e-4` (say)
//! shows how they depend on how often accounts move. Criterion's timings
//! are wall time, which on a machine shared with other work includes time
//! spent waiting for a core; so after them the bench also prints each
//! routine's throughput per second of on-CPU time (two seconds each, from
//! /proc/thread-self/schedstat). A filter that matches no benchmark
//! (`cargo bench --bench encoding -- none`) prints only the sizes and those.

use std::f64::consts::TAU;
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tally::bench_support::{decode_times, decode_values, encode_times, encode_values};
use tally::generate::Rng;

/// How many series the data set has: enough that the power law's tail
/// (accounts of 1e5 and more are about one in a thousand) is represented.
const SERIES: usize = 8192;
/// Hours in the window one segment covers.
const HOURS: u64 = 720;
const HOUR_MS: i64 = 3_600_000;
/// 2024-01-01T00:00:00Z, where the window starts.
const START_MS: i64 = 1_704_067_200_000;
const SEED: u64 = 0x7a11_7a11_2024_0001;

/// Hourly probability, per follower, that one follows or one unfollows.
/// Chosen so that an account of 200 followers (the median of the power law
/// below) sees a net change in about 10% of its hours. The environment
/// variable `TALLY_BENCH_CHURN` overrides it, to see how size depends on it.
const CHURN_PER_FOLLOWER_HOUR: f64 = 2.6e-4;

/// The generator's splitmix64 stream (`tally::generate::Rng`), with the
/// draws this benchmark's series need on top.
struct SplitMix64(Rng);

impl SplitMix64 {
    fn new(seed: u64) -> SplitMix64 {
        SplitMix64(Rng::new(seed))
    }

    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        self.0.unit()
    }

    /// Uniform in lo ..= hi.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// Standard normal, by Box–Muller.
    fn gauss(&mut self) -> f64 {
        let u = 1.0 - self.unit(); // in (0, 1], so the logarithm is finite
        (-2.0 * u.ln()).sqrt() * (TAU * self.unit()).cos()
    }

    /// Poisson with mean `lambda`: Knuth's product method for small means,
    /// the normal approximation for large ones.
    fn poisson(&mut self, lambda: f64) -> u64 {
        if lambda <= 0.0 {
            return 0;
        }
        if lambda < 30.0 {
            let limit = (-lambda).exp();
            let mut k = 0;
            let mut p = self.unit();
            while p > limit {
                k += 1;
                p *= self.unit();
            }
            k
        } else {
            (lambda + lambda.sqrt() * self.gauss()).round().max(0.0) as u64
        }
    }
}

/// One series as the segment writer would hand it to the encoders.
struct Series {
    times: Vec<i64>,
    values: Vec<u64>,
}

/// The series with the given seed. Everything but the hourly noise is drawn
/// first, so a different churn changes the noise and not the accounts.
fn follower_series(seed: u64, churn_per_follower_hour: f64) -> Series {
    let rng = &mut SplitMix64::new(seed);
    // Power law with exponent 1 (P(size > s) ∝ 1/s), cut to 1e2 ..= 1e7.
    let u = 1e-5 + (1.0 - 1e-5) * rng.unit();
    let size = 100.0 / u;
    let churn = churn_per_follower_hour * size;
    // Net growth over the month between −2% and +6%.
    let trend = size * (-0.02 + 0.08 * rng.unit()) / HOURS as f64;
    // Activity follows the day: more in the evening, less at night.
    let phase = TAU * rng.unit();

    let purge_hour = rng.range(24, HOURS - 24);
    let purge_fraction = 0.02 + 0.18 * rng.unit();
    let glitch_hour = rng.range(24, HOURS - 24);
    let glitch_hours = rng.range(1, 6);
    let glitch_to_zero = rng.unit() < 0.5;
    let glitch_fraction = 0.3 + 0.6 * rng.unit();

    // Hours the scraper missed: a few short outages in some series.
    let mut missing = vec![false; HOURS as usize];
    for _ in 0..rng.poisson(0.5) {
        let at = rng.range(1, HOURS - 4) as usize;
        let len = rng.range(1, 3) as usize;
        missing[at..at + len].fill(true);
    }

    let start = START_MS + HOUR_MS * rng.range(0, 23) as i64;
    let mut count = size.round() as u64;
    let mut series = Series {
        times: Vec::with_capacity(HOURS as usize),
        values: Vec::with_capacity(HOURS as usize),
    };
    for hour in 0..HOURS {
        if hour > 0 {
            let activity = 1.0 + 0.5 * (TAU * hour as f64 / 24.0 + phase).sin();
            let follows = rng.poisson(activity * churn + trend.max(0.0));
            let unfollows = rng.poisson(activity * churn + (-trend).max(0.0));
            count = (count + follows).saturating_sub(unfollows);
            if hour == purge_hour {
                let purged = ((count as f64 * purge_fraction) as u64).max(1);
                count = count.saturating_sub(purged);
            }
        }
        if missing[hour as usize] {
            continue;
        }
        let observed = if (glitch_hour..glitch_hour + glitch_hours).contains(&hour) {
            if glitch_to_zero {
                0
            } else {
                (count as f64 * (1.0 - glitch_fraction)) as u64
            }
        } else {
            count
        };
        series.times.push(start + HOUR_MS * hour as i64);
        series.values.push(observed);
    }
    series
}

/// The encoded data set, laid out like a segment group: all time columns
/// in one buffer, all value columns in another, and an index.
struct Encoded {
    times: Vec<u8>,
    values: Vec<u8>,
    index: Vec<Entry>,
}

struct Entry {
    t_min: i64,
    n: usize,
    times: std::ops::Range<usize>,
    values: std::ops::Range<usize>,
}

fn encode_all(data: &[Series]) -> Encoded {
    let mut encoded = Encoded {
        times: Vec::new(),
        values: Vec::new(),
        index: Vec::with_capacity(data.len()),
    };
    for s in data {
        let t0 = encoded.times.len();
        encode_times(&s.times, &mut encoded.times);
        let v0 = encoded.values.len();
        encode_values(&s.values, &mut encoded.values);
        encoded.index.push(Entry {
            t_min: s.times[0],
            n: s.times.len(),
            times: t0..encoded.times.len(),
            values: v0..encoded.values.len(),
        });
    }
    encoded
}

/// Prints what the data set looks like and what it costs on disk.
fn report(data: &[Series], encoded: &Encoded) {
    let points: usize = data.iter().map(|s| s.times.len()).sum();
    let (t, v) = (encoded.times.len(), encoded.values.len());
    println!(
        "data set: {} series, {points} points; bytes/point: times {:.4} + values {:.4} = {:.4}",
        data.len(),
        t as f64 / points as f64,
        v as f64 / points as f64,
        (t + v) as f64 / points as f64
    );
    let mut zero = 0usize;
    let mut deltas = 0usize;
    // Per decade of account size: series, points, column bytes, zero deltas.
    let mut decades = [(0usize, 0usize, 0usize, 0usize); 6];
    for (s, e) in data.iter().zip(&encoded.index) {
        let z = s.values.windows(2).filter(|w| w[0] == w[1]).count();
        zero += z;
        deltas += s.values.len() - 1;
        let decade = (s.values[0].max(1) as f64).log10().floor().clamp(2.0, 7.0) as usize - 2;
        let d = &mut decades[decade];
        d.0 += 1;
        d.1 += s.values.len();
        d.2 += e.times.len() + e.values.len();
        d.3 += z;
    }
    let mut zero_share: Vec<f64> = data
        .iter()
        .map(|s| {
            let z = s.values.windows(2).filter(|w| w[0] == w[1]).count();
            z as f64 / (s.values.len() - 1) as f64
        })
        .collect();
    zero_share.sort_by(f64::total_cmp);
    println!(
        "zero deltas of the median account: {:.1}% (a quarter of accounts below {:.1}%)",
        100.0 * zero_share[zero_share.len() / 2],
        100.0 * zero_share[zero_share.len() / 4]
    );
    let kinds = block_kinds(encoded);
    let blocks: usize = kinds.iter().sum();
    let share = |k: usize| 100.0 * kinds[k] as f64 / blocks as f64;
    println!(
        "zero deltas: {:.1}% overall; value blocks: {:.1}% width 0, {:.1}% width 0 with exceptions, \
         {:.1}% packed, {:.1}% packed with exceptions, {:.1}% sparse",
        100.0 * zero as f64 / deltas as f64,
        share(0),
        share(1),
        share(2),
        share(3),
        share(4)
    );
    for (i, (series, points, bytes, zeros)) in decades.iter().enumerate() {
        if *series > 0 {
            println!(
                "  accounts 1e{}..1e{}: {series:5} series, {:5.1}% zero deltas, {:.3} bytes/point",
                i + 2,
                i + 3,
                100.0 * *zeros as f64 / (*points - *series) as f64,
                *bytes as f64 / *points as f64
            );
        }
    }
}

/// Counts the value blocks of the data set by kind, reading the headers as
/// docs/format.md lays them out: (width 0 without exceptions, width 0 with
/// exceptions, packed without exceptions, packed with exceptions, sparse).
fn block_kinds(encoded: &Encoded) -> [usize; 5] {
    fn varint(col: &[u8], pos: &mut usize) -> u64 {
        let mut v = 0;
        let mut shift = 0;
        loop {
            let b = col[*pos];
            *pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            shift += 7;
            if b < 0x80 {
                return v;
            }
        }
    }
    /// Skips the Rice code at bit `*bit` of `bytes` (docs/format.md, "Sparse block").
    fn skip_rice(bytes: &[u8], bit: &mut usize, k: usize) {
        while bytes[*bit / 8] >> (*bit % 8) & 1 == 1 {
            *bit += 1;
        }
        *bit += 1 + k;
    }
    let mut kinds = [0; 5];
    for e in &encoded.index {
        let col = &encoded.values[e.values.clone()];
        let mut pos = 0;
        varint(col, &mut pos);
        let mut left = e.n - 1;
        while left > 0 {
            let len = left.min(256);
            left -= len;
            let header = col[pos];
            pos += 1;
            if header == 0x7f {
                let m = varint(col, &mut pos);
                let k = usize::from(col[pos]);
                pos += 1;
                let mut bit = 0;
                for _ in 0..m {
                    skip_rice(&col[pos..], &mut bit, k & 0x0f);
                    skip_rice(&col[pos..], &mut bit, k >> 4);
                }
                pos += bit.div_ceil(8);
                kinds[4] += 1;
                continue;
            }
            let b = usize::from(header & 0x7f);
            let exceptions = if header & 0x80 != 0 {
                varint(col, &mut pos) as usize
            } else {
                0
            };
            pos += (len * b).div_ceil(8) + exceptions;
            for _ in 0..exceptions {
                varint(col, &mut pos);
            }
            kinds[usize::from(b > 0) * 2 + usize::from(exceptions > 0)] += 1;
        }
        assert_eq!(pos, col.len());
    }
    kinds
}

fn bench(c: &mut Criterion) {
    let churn = std::env::var("TALLY_BENCH_CHURN")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(CHURN_PER_FOLLOWER_HOUR);
    println!("churn per follower and hour: {churn:e}");
    // One generator hands out a seed per series, so each series is the same
    // whatever the others draw.
    let mut seeds = SplitMix64::new(SEED);
    let data: Vec<Series> = (0..SERIES)
        .map(|_| follower_series(seeds.next_u64(), churn))
        .collect();
    let points: usize = data.iter().map(|s| s.times.len()).sum();
    let encoded = encode_all(&data);
    report(&data, &encoded);

    // Check once that the columns decode to the data, so the timings below
    // are of correct decoding.
    let mut times = Vec::new();
    let mut values = Vec::new();
    for (s, e) in data.iter().zip(&encoded.index) {
        times.clear();
        values.clear();
        decode_times(&encoded.times[e.times.clone()], e.t_min, e.n, &mut times).unwrap();
        decode_values(&encoded.values[e.values.clone()], e.n, &mut values).unwrap();
        assert_eq!((&times, &values), (&s.times, &s.values));
    }

    // Encode every series into reused column buffers, as a segment writer
    // does for one group.
    let mut time_col = Vec::with_capacity(encoded.times.len());
    let mut value_col = Vec::with_capacity(encoded.values.len());
    let mut encode = || {
        time_col.clear();
        value_col.clear();
        for s in &data {
            encode_times(black_box(&s.times), &mut time_col);
            encode_values(black_box(&s.values), &mut value_col);
        }
        time_col.len() + value_col.len()
    };

    // Decode series by series into reused buffers, as a query does.
    let decode = |with_times: bool, with_values: bool| {
        let (encoded, mut times, mut values) = (&encoded, Vec::new(), Vec::new());
        move || {
            let mut check = 0u64;
            for e in &encoded.index {
                if with_times {
                    times.clear();
                    let col = &encoded.times[e.times.clone()];
                    decode_times(black_box(col), e.t_min, e.n, &mut times).unwrap();
                    check = check.wrapping_add(times[e.n - 1] as u64);
                }
                if with_values {
                    values.clear();
                    let col = &encoded.values[e.values.clone()];
                    decode_values(black_box(col), e.n, &mut values).unwrap();
                    check = check.wrapping_add(values[e.n - 1]);
                }
            }
            check
        }
    };
    let mut decode_both = decode(true, true);
    let mut decode_times_only = decode(true, false);
    let mut decode_values_only = decode(false, true);

    // For scale: producing the same output by copying it from uncompressed
    // arrays in memory (16 bytes read and written per point).
    let flat_times: Vec<i64> = data.iter().flat_map(|s| s.times.iter().copied()).collect();
    let flat_values: Vec<u64> = data.iter().flat_map(|s| s.values.iter().copied()).collect();
    let (mut copy_times, mut copy_values) = (Vec::new(), Vec::new());
    let mut copy = || {
        let mut at = 0;
        let mut check = 0u64;
        for e in &encoded.index {
            copy_times.clear();
            copy_values.clear();
            copy_times.extend_from_slice(&flat_times[at..at + e.n]);
            copy_values.extend_from_slice(&flat_values[at..at + e.n]);
            at += e.n;
            check = check.wrapping_add(copy_values[e.n - 1] ^ copy_times[e.n - 1] as u64);
        }
        check
    };

    let mut group = c.benchmark_group("encoding");
    group.throughput(Throughput::Elements(points as u64));
    group.bench_function("encode times+values", |b| b.iter(&mut encode));
    group.bench_function("decode times+values", |b| b.iter(&mut decode_both));
    group.bench_function("decode times", |b| b.iter(&mut decode_times_only));
    group.bench_function("decode values", |b| b.iter(&mut decode_values_only));
    group.bench_function("copy uncompressed (baseline)", |b| b.iter(&mut copy));
    group.finish();

    // Criterion measures wall time, which on a busy machine includes the
    // time this thread waited for a core. On-CPU time does not.
    println!("on-CPU throughput in points/s (excludes time descheduled; Linux only):");
    let report_cpu = |name: &str, routine: &mut dyn FnMut()| {
        let rate = cpu_throughput(points, routine);
        let rate = rate.map_or("n/a".to_string(), |r| format!("{:.3} G", r / 1e9));
        println!("  {name:30} {rate}");
    };
    report_cpu("encode times+values", &mut || {
        black_box(encode());
    });
    report_cpu("decode times+values", &mut || {
        black_box(decode_both());
    });
    report_cpu("decode times", &mut || {
        black_box(decode_times_only());
    });
    report_cpu("decode values", &mut || {
        black_box(decode_values_only());
    });
    report_cpu("copy uncompressed (baseline)", &mut || {
        black_box(copy());
    });
}

/// This thread's time on a CPU so far, in nanoseconds, from
/// /proc/thread-self/schedstat; `None` where that file does not exist. The
/// kernel updates it at scheduler ticks, so only long spans are precise.
fn thread_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// Points per second of on-CPU time, running `routine` (which handles
/// `points` points) for two seconds of it: long enough that the tick
/// granularity of [`thread_cpu_ns`] is below 0.5%.
fn cpu_throughput(points: usize, routine: &mut dyn FnMut()) -> Option<f64> {
    routine(); // warm up
    let start = thread_cpu_ns()?;
    let mut rounds = 0u64;
    loop {
        routine();
        rounds += 1;
        let spent = thread_cpu_ns()? - start;
        if spent >= 2_000_000_000 {
            return Some((rounds * points as u64) as f64 / (spent as f64 / 1e9));
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).warm_up_time(std::time::Duration::from_secs(1));
    targets = bench
}
criterion_main!(benches);

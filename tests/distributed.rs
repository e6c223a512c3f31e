//! Queries across shards on datafusion-distributed (docs/scale-out.md,
//! [SO50]): generated data imported once into one database and, with
//! `tally import --shard S/4`, into four shards; every query shape run over
//! the shards gives exactly the single database's answer, rows, order and
//! notices. The engine runs in this process, with its in-memory channel to
//! a worker.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use tally::distributed::{Coordinator, ShardSet};
use tally::{Db, Query, Shard, Table, TimeRange};

const SHARDS: u32 = 4;

fn tally(db: &Path) -> Command {
    let mut cmd = Command::cargo_bin("tally").unwrap();
    cmd.arg("--db").arg(db).env_remove("TALLY_DB");
    cmd
}

/// Generated data, one database of it, and the same data in four shards.
struct Data {
    _dir: tempfile::TempDir,
    whole: PathBuf,
    shards: Vec<PathBuf>,
}

/// Two accounts in different shards whose falls lose the same number of
/// followers at the same time, for topk()'s tie rule across shards
/// ([SO50]); and their snapshot rows.
fn tied_accounts() -> (String, String, String) {
    let mut names = (0..).map(|i| format!("tie{i}"));
    let first = names.next().unwrap();
    let shard_of = |name: &str| {
        // The shard hash of docs/scale-out.md, [SO1].
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for &byte in name.as_bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        hash % u64::from(SHARDS)
    };
    let second = names.find(|n| shard_of(n) != shard_of(&first)).unwrap();
    // A fall of 5,000,000 followers, larger than any generated one, so that
    // the two rows are the top two of topk().
    let mut csv = String::from("account,time,followers\n");
    for name in [&first, &second] {
        csv.push_str(&format!("{name},2018-11-21T00:00:00Z,9000000\n"));
        csv.push_str(&format!("{name},2018-11-21T01:00:00Z,4000000\n"));
    }
    (first, second, csv)
}

impl Data {
    fn new() -> Data {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("gen");
        Command::cargo_bin("tally")
            .unwrap()
            .args([
                "generate",
                "--accounts",
                "2000",
                "--hours",
                "168",
                "--seed",
                "7",
            ])
            .args(["--single-file", "--out"])
            .arg(&out)
            .assert()
            .success();
        let (_, _, ties) = tied_accounts();
        let tie_file = dir.path().join("ties.csv");
        std::fs::write(&tie_file, ties).unwrap();
        let snapshots = out.join("snapshots");
        let whole = dir.path().join("whole");
        tally(&whole)
            .arg("import")
            .arg(&snapshots)
            .arg(&tie_file)
            .assert()
            .success();
        let shards: Vec<PathBuf> = (0..SHARDS)
            .map(|s| {
                let shard = dir.path().join(format!("shard-{s}"));
                tally(&shard)
                    .args(["import", "--shard", &format!("{s}/{SHARDS}")])
                    .arg(&snapshots)
                    .arg(&tie_file)
                    .assert()
                    .success();
                shard
            })
            .collect();
        Data {
            _dir: dir,
            whole,
            shards,
        }
    }

    /// The shard directories as a set one in-process worker serves.
    fn shard_set(&self) -> ShardSet {
        let databases = self
            .shards
            .iter()
            .enumerate()
            .map(|(s, dir)| {
                (
                    Shard::new(s as u32, SHARDS).unwrap(),
                    Db::open(dir).unwrap(),
                )
            })
            .collect();
        ShardSet::from_databases("in-process", databases).unwrap()
    }
}

/// The queries of [SO50]: every query shape, a time range, a named account
/// and a misspelt one (its notice), and a misspelt metric.
fn queries() -> Vec<(String, Option<TimeRange>)> {
    let (tie, _, _) = tied_accounts();
    let d = "drop(followers, 5%, 1h)";
    let r = format!("recovered_within({d}, 1d)");
    let mut texts: Vec<String> = vec![
        d.to_string(),
        r.clone(),
        format!("not {r}"),
        format!("topk(10, {d})"),
        format!("topk(10, {r}, lost_pct)"),
        format!("summarize({d}, 1h)"),
        format!("summarize({d})"),
        format!("summarize({r}, 1d)"),
        format!("count({d})"),
        format!("sum({d})"),
        "count(followers)".to_string(),
        "sum(change(followers, 1h))".to_string(),
        format!("count(summarize({d}, 1h))"),
        format!("count(topk(10, {d}))"),
        format!("topk(3, topk(10, {r}))"),
        format!(r#"drop(followers{{account="{tie}"}}, 5%, 1h)"#),
        r#"drop(followers{account="tie"}, 5%, 1h)"#.to_string(),
        "drop(folowers, 5%, 1h)".to_string(),
        r#"change(followers{account=~"a.*"}, 1d)"#.to_string(),
    ];
    let mut all: Vec<(String, Option<TimeRange>)> = texts.drain(..).map(|t| (t, None)).collect();
    // 2018-11-22T00:00Z to 2018-11-24T00:00Z.
    let range = TimeRange {
        from: 1_542_844_800_000,
        to: 1_543_017_600_000,
    };
    all.push((d.to_string(), Some(range)));
    all.push((format!("summarize({r}, 1h)"), Some(range)));
    all
}

fn parse(text: &str, range: Option<TimeRange>) -> Query {
    let query = Query::parse(text).unwrap();
    match range {
        Some(range) => query.range(range),
        None => query,
    }
}

#[test]
fn in_process_cluster_gives_the_single_database_answer() {
    // [SO50], 1.
    let data = Data::new();
    let whole = Db::open(&data.whole).unwrap();
    let coordinator = Coordinator::in_process(data.shard_set()).unwrap();
    for (text, range) in queries() {
        let query = parse(&text, range);
        let expected: Table = query.run(&whole).unwrap();
        let got = coordinator.run(&query).unwrap();
        assert_eq!(got, expected, "for {text} over {range:?}");
    }

    // So that the test can fail: every shard contributes rows to drop(),
    // and the tied falls of two shards come out by name.
    let drops = coordinator
        .run(&Query::parse("drop(followers, 5%, 1h)").unwrap())
        .unwrap();
    assert!(drops.len() > 20, "only {} drops", drops.len());
    for (s, dir) in data.shards.iter().enumerate() {
        let shard = Db::open(dir).unwrap();
        let of_shard = shard.query("drop(followers, 5%, 1h)").unwrap();
        assert!(!of_shard.is_empty(), "shard {s} has no drop");
        for row in of_shard.rows() {
            assert!(drops.rows().contains(row), "shard {s}: {row:?} is missing");
        }
    }
    let (first, second, _) = tied_accounts();
    let top = coordinator
        .run(&Query::parse("topk(2, drop(followers, 5%, 1h))").unwrap())
        .unwrap();
    let names: Vec<&str> = top.rows().iter().filter_map(|r| r[0].as_str()).collect();
    let mut expected = [first.as_str(), second.as_str()];
    expected.sort_unstable();
    assert_eq!(names, expected);
    let notice = coordinator
        .run(&Query::parse("drop(folowers, 5%, 1h)").unwrap())
        .unwrap();
    assert_eq!(
        notice.notices()[0].to_string(),
        "no metric `folowers`; did you mean `followers`?"
    );
}

/// A `tally worker` process, ended by its pid when dropped.
struct WorkerProcess(std::process::Child);

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port on 127.0.0.1 that was free a moment ago.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Starts `tally worker` for `node` of the cluster file, and waits until
/// it says it listens.
fn start_worker(cluster: &Path, node: &str) -> WorkerProcess {
    use std::io::BufRead;
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("tally"))
        .arg("worker")
        .arg("--cluster")
        .arg(cluster)
        .args(["--node", node])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let worker = WorkerProcess(child);
    let mut lines = std::io::BufReader::new(stderr).lines();
    let first = lines.next().and_then(|l| l.ok()).unwrap_or_default();
    assert!(
        first.starts_with("tally worker: node"),
        "worker {node}: {first:?}"
    );
    // The rest of its standard error is drained, so that it never blocks.
    std::thread::spawn(move || lines.for_each(drop));
    worker
}

#[test]
fn two_worker_processes_give_the_single_database_csv_byte_for_byte() {
    // [SO50], 2: the real `tally worker` twice on 127.0.0.1, two shards
    // each, and the real `tally query --cluster`.
    let data = Data::new();
    let (port_a, port_b) = (free_port(), free_port());
    let dir = |s: usize| data.shards[s].display().to_string();
    let cluster = data._dir.path().join("cluster.json");
    std::fs::write(
        &cluster,
        serde_json::json!({
            "format": 1, "shards": SHARDS, "hash": "fnv1a64-mod",
            "nodes": [
                {"name": "a", "url": format!("http://127.0.0.1:{port_a}"),
                 "shards": {"0": dir(0), "3": dir(3)}},
                {"name": "b", "url": format!("http://127.0.0.1:{port_b}"),
                 "shards": {"1": dir(1), "2": dir(2)}},
            ]
        })
        .to_string(),
    )
    .unwrap();
    let _a = start_worker(&cluster, "a");
    let _b = start_worker(&cluster, "b");
    for (text, range) in queries() {
        let mut flags = vec!["query".to_string(), "--format".into(), "csv".into()];
        if let Some(range) = range {
            flags.extend(["--from".into(), (range.from / 1000).to_string()]);
            flags.extend(["--to".into(), (range.to / 1000).to_string()]);
        }
        flags.push(text.clone());
        let one = tally(&data.whole).args(&flags).output().unwrap();
        assert!(one.status.success(), "{text}: {one:?}");
        let mut cluster_cmd = Command::cargo_bin("tally").unwrap();
        cluster_cmd
            .env_remove("TALLY_DB")
            .arg("query")
            .arg("--cluster")
            .arg(&cluster);
        let shards = cluster_cmd.args(&flags[1..]).output().unwrap();
        assert!(shards.status.success(), "{text}: {shards:?}");
        assert!(!one.stdout.is_empty());
        assert_eq!(
            String::from_utf8_lossy(&shards.stdout),
            String::from_utf8_lossy(&one.stdout),
            "the rows of {text} over {range:?}"
        );
        assert_eq!(
            String::from_utf8_lossy(&shards.stderr),
            String::from_utf8_lossy(&one.stderr),
            "the notices of {text} over {range:?}"
        );
    }
}

#[test]
fn a_worker_refuses_a_directory_of_another_shard() {
    // [SO3] [SO30]: the marker is checked when the worker starts.
    let dir = tempfile::tempdir().unwrap();
    let snap = dir.path().join("s.csv");
    std::fs::write(
        &snap,
        "account,time,followers\nann,2019-02-13T10:00:00Z,5\n",
    )
    .unwrap();
    let shard = dir.path().join("shard-1");
    tally(&shard)
        .args(["import", "--shard", "1/2"])
        .arg(&snap)
        .assert()
        .success();
    let cluster = dir.path().join("cluster.json");
    std::fs::write(
        &cluster,
        serde_json::json!({
            "format": 1, "shards": 2, "hash": "fnv1a64-mod",
            "nodes": [{"name": "a", "url": format!("http://127.0.0.1:{}", free_port()),
                       "shards": {"0": shard.display().to_string(), "1": shard.display().to_string()}}]
        })
        .to_string(),
    )
    .unwrap();
    Command::cargo_bin("tally")
        .unwrap()
        .args(["worker", "--cluster"])
        .arg(&cluster)
        .args(["--node", "a"])
        .assert()
        .failure()
        .stderr(predicates::str::contains(
            "is shard 1 of 2, not shard 0 of 2",
        ));
}

//! Databases written by earlier format versions still open and answer
//! (docs/format.md, "Version history"): `tests/fixtures/v1.db` was written
//! by the format-1 writer and is checked against a database imported afresh
//! from the same snapshot file by this build.

use std::path::Path;

use tally::import::{ImportOptions, Input};
use tally::{Db, Query, TimeRange};

fn fixture() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures"))
}

/// A copy of the fixture, so that nothing a test does touches the original.
fn copy_of_v1(dir: &Path) -> std::path::PathBuf {
    let to = dir.join("v1.db");
    std::fs::create_dir(&to).unwrap();
    for entry in std::fs::read_dir(fixture().join("v1.db")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
    to
}

fn fresh_import(dir: &Path) -> Db {
    let db = Db::open(dir.join("fresh.db")).unwrap();
    let mut writer = db.writer().unwrap();
    let input = [Input::Path(fixture().join("v1.csv"))];
    writer
        .import(&input, &ImportOptions::default(), |_| {})
        .unwrap();
    writer.commit().unwrap();
    db
}

fn all_points(db: &Db) -> Vec<(String, String, i64, u64)> {
    let mut out = Vec::new();
    for metric in db.metrics() {
        for s in db.series(&metric, |_| true).unwrap() {
            for p in db.points(&s.account, &metric, TimeRange::ALL).unwrap() {
                out.push((s.account.clone(), metric.clone(), p.time, p.count));
            }
        }
    }
    out
}

const QUERIES: [&str; 4] = [
    "drop(followers, 5%, 1h)",
    "recovered_within(drop(followers, 5%, 1h), 1d)",
    "summarize(drop(followers, 5%, 1h), 1h)",
    "following{account=~\"a.*\"}",
];

fn answers(db: &Db) -> Vec<String> {
    QUERIES
        .iter()
        .map(|q| format!("{:?}", Query::parse(q).unwrap().run(db).unwrap()))
        .collect()
}

#[test]
fn a_version_1_database_answers_as_a_fresh_import() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = Db::open(copy_of_v1(dir.path())).unwrap();
    let fresh = fresh_import(dir.path());
    assert_eq!(v1.stats().unwrap().segments, 16);
    let points = all_points(&v1);
    assert!(points.len() > 3_000, "{}", points.len());
    assert_eq!(points, all_points(&fresh));
    assert_eq!(answers(&v1), answers(&fresh));
    let report = Db::verify(v1.path()).unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
}

#[test]
fn a_version_1_database_takes_new_commits_and_merges() {
    // New segments are written in the current version beside the old
    // ones; a compaction rewrites everything in the current version.
    let dir = tempfile::tempdir().unwrap();
    let path = copy_of_v1(dir.path());
    let fresh = fresh_import(dir.path());
    let v1 = Db::open(&path).unwrap();
    let mut writer = v1.writer().unwrap();
    let mut fresh_writer = fresh.writer().unwrap();
    for w in [&mut writer, &mut fresh_writer] {
        w.append("newcomer", "followers", 1_542_672_000_000, 5)
            .unwrap();
        w.commit().unwrap();
    }
    assert_eq!(all_points(&v1), all_points(&fresh));
    writer.compact().unwrap();
    assert_eq!(v1.stats().unwrap().segments, 1);
    assert_eq!(all_points(&v1), all_points(&fresh));
    assert_eq!(answers(&v1), answers(&fresh));
    drop(writer);
    let report = Db::verify(&path).unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
}

/// A copy of a fixture folder.
fn copy_of(dir: &Path, name: &str) -> std::path::PathBuf {
    let to = dir.join(name);
    std::fs::create_dir(&to).unwrap();
    for entry in std::fs::read_dir(fixture().join(name)).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
    to
}

#[test]
fn a_version_3_database_with_a_dictionary_index_answers_as_a_fresh_import() {
    // [DX1]: v3.db has a dictionary index covering v1.csv's names and a
    // tail (v3-extra.csv: a new metric, new accounts, a new series of an
    // indexed account) parsed after it.
    let dir = tempfile::tempdir().unwrap();
    let path = copy_of(dir.path(), "v3.db");
    let names: Vec<String> = std::fs::read_dir(&path)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert!(names.iter().any(|n| n.ends_with(".tdix")), "{names:?}");
    let v3 = Db::open(&path).unwrap();
    let fresh = fresh_import(dir.path());
    let mut writer = fresh.writer().unwrap();
    let extra = [Input::Path(fixture().join("v3-extra.csv"))];
    writer
        .import(&extra, &ImportOptions::default(), |_| {})
        .unwrap();
    writer.commit().unwrap();
    drop(writer);
    assert_eq!(all_points(&v3), all_points(&fresh));
    assert_eq!(answers(&v3), answers(&fresh));
    assert_eq!(v3.accounts().unwrap(), fresh.accounts().unwrap());
    let one = Query::parse("posts{account=\"newcomer_ünï\"}").unwrap();
    assert_eq!(
        format!("{:?}", one.run(&v3).unwrap()),
        format!("{:?}", one.run(&fresh).unwrap())
    );
    let report = Db::verify(&path).unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
    // It takes new commits, and a compaction folds the tail into a new
    // index.
    let mut writer = v3.writer().unwrap();
    writer
        .append("later", "posts", 1_542_850_000_000, 1)
        .unwrap();
    writer.commit().unwrap();
    // A snapshot of every account at one new time is a head frame ([HD3]):
    // the version-3 database takes a head, and verifies clean with it.
    for account in fresh.accounts().unwrap() {
        writer
            .append(&account, "followers", 1_542_853_600_000, 5)
            .unwrap();
    }
    writer.commit().unwrap();
    assert!(
        std::fs::read_dir(&path)
            .unwrap()
            .any(|e| { e.unwrap().file_name().to_string_lossy().ends_with(".thead") })
    );
    let report = Db::verify(&path).unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
    writer.compact().unwrap();
    drop(writer);
    assert_eq!(
        Db::open(&path).unwrap().accounts().unwrap().len(),
        fresh.accounts().unwrap().len() + 1
    );
    let report = Db::verify(&path).unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
}

#[test]
fn a_damaged_dictionary_index_fails_the_query_and_verify_names_it() {
    // [DX2]: a flipped byte in the index's sections is found by the read
    // that touches its page; the query fails instead of answering without
    // the account.
    let dir = tempfile::tempdir().unwrap();
    let path = copy_of(dir.path(), "v3.db");
    let index = std::fs::read_dir(&path)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "tdix"))
        .unwrap();
    let mut bytes = std::fs::read(&index).unwrap();
    // Past the header, metric names and series.dict's page checksums: the
    // account entries.
    let at = bytes.len() / 3;
    bytes[at] ^= 0x01;
    std::fs::write(&index, &bytes).unwrap();
    // This index is one page long, so opening it (which reads the metric
    // names on that page) meets the damage already; a larger one meets it
    // in the query.
    let query = Query::parse("drop(followers, 5%, 1h)").unwrap();
    let result = Db::open(&path).and_then(|db| query.run(&db));
    let error = result.expect_err("the damage is met").to_string();
    assert!(error.contains(".tdix"), "{error}");
    let report = Db::verify(&path).unwrap();
    assert!(
        report.problems.iter().any(|p| p.contains(".tdix")),
        "{:?}",
        report.problems
    );
}

#[test]
fn a_version_4_database_with_heads_answers_as_a_fresh_import() {
    // [HD1]-[HD4], [M12]: v4.db holds v1.csv's 48 hours as they arrive,
    // one import per hourly file, so every hour is a head frame: two heads,
    // one per day, named by a version-3 manifest.
    let dir = tempfile::tempdir().unwrap();
    let path = copy_of(dir.path(), "v4.db");
    let heads = std::fs::read_dir(&path)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".thead")
        })
        .count();
    assert_eq!(heads, 2);
    let v4 = Db::open(&path).unwrap();
    let fresh = fresh_import(dir.path());
    assert_eq!(all_points(&v4), all_points(&fresh));
    assert_eq!(answers(&v4), answers(&fresh));
    let report = Db::verify(&path).unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
    // It takes a new commit (a segment: one point of a new series is too
    // sparse for a frame), and a compaction makes one segment of everything.
    let mut writer = v4.writer().unwrap();
    writer
        .append("later", "followers", 1_542_931_200_000, 9)
        .unwrap();
    writer.commit().unwrap();
    writer.compact().unwrap();
    drop(writer);
    let db = Db::open(&path).unwrap();
    assert_eq!(
        db.accounts().unwrap().len(),
        fresh.accounts().unwrap().len() + 1
    );
    assert_eq!(db.stats().unwrap().segments, 1);
    let report = Db::verify(&path).unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
}

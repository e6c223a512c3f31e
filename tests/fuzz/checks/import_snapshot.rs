//! `import_snapshot`: arbitrary bytes through the real importer
//! (`Writer::import`, docs/import.md) into a database that already holds a
//! committed batch.
//!
//! The first byte chooses how the rest is imported ([`Mode`]); the rest is
//! the snapshot. Checked:
//!
//! - an import never panics;
//! - after an error, once the writer is dropped, the database holds exactly
//!   what it held before, leaves no file behind, and verifies clean;
//! - after success the batch commits, `Db::verify` is clean, every point
//!   of before is still there (a later point only replaces one at the same
//!   time), and the import added at most as many points as it pushed.

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::LazyLock;

use flate2::Compression;
use flate2::write::GzEncoder;
use tally::import::{Format, ImportOptions, Input};
use tally::{Db, Options};

use crate::common::{self, Files};

/// The base database's files: the sample day, committed as one batch. Kept
/// in memory and written afresh for every input.
static BASE: LazyLock<Files> = LazyLock::new(|| {
    let dir = common::tempdir();
    let db = Db::open(dir.path()).expect("the base database opens");
    let mut w = db.writer().expect("the base database's writer");
    common::append_sample(&mut w, 0..24);
    w.commit().expect("the base database commits");
    drop(w);
    common::read_files(dir.path())
});

/// How the first byte of the input says to import the rest.
#[derive(Debug, Clone, Copy)]
struct Mode {
    /// JSON lines (bit 0 set) or CSV.
    format: Format,
    /// Bits 1-2.
    packing: Packing,
    /// Bit 3: `--skip-bad`.
    skip_bad: bool,
    /// Bit 4: `--at 2019-02-13T12:00:00Z`.
    at: bool,
    /// Bit 5: the format is given (`--format`) rather than told from the
    /// file's name.
    explicit_format: bool,
    /// Bit 6: merge after the commit, as `tally import` does.
    auto_merge: bool,
}

#[derive(Debug, Clone, Copy)]
enum Packing {
    /// The bytes as they are.
    Plain,
    /// Gzipped here, in one member.
    Gzip,
    /// Gzipped here, in two members (`cat a.gz b.gz`, [IM3]).
    GzipTwoMembers,
    /// The bytes as they are, in a file named `.gz`: the fuzzer's own gzip.
    RawGz,
}

impl Mode {
    fn from_byte(b: u8) -> Mode {
        Mode {
            format: if b & 1 == 0 {
                Format::Csv
            } else {
                Format::Jsonl
            },
            packing: match (b >> 1) & 3 {
                0 => Packing::Plain,
                1 => Packing::Gzip,
                2 => Packing::GzipTwoMembers,
                _ => Packing::RawGz,
            },
            skip_bad: b & 8 != 0,
            at: b & 16 != 0,
            explicit_format: b & 32 != 0,
            auto_merge: b & 64 != 0,
        }
    }
}

fn gzip(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for part in parts {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
        // Writing to a Vec cannot fail.
        encoder.write_all(part).expect("gzip into memory");
        out.extend(encoder.finish().expect("gzip into memory"));
    }
    out
}

pub fn check(data: &[u8]) {
    let Some((&first, snapshot)) = data.split_first() else {
        return;
    };
    let mode = Mode::from_byte(first);
    let dir = common::tempdir();
    let db_dir = dir.path().join("db");
    common::write_files(&db_dir, &BASE);
    let db = Db::open_with(&db_dir, Options::default().auto_merge(mode.auto_merge))
        .expect("the base database opens");
    let before = common::dump(&db).expect("the base database reads");
    let files_before = common::file_names(&db_dir);

    let (bytes, gz) = match mode.packing {
        Packing::Plain => (snapshot.to_vec(), false),
        Packing::Gzip => (gzip(&[snapshot]), true),
        Packing::GzipTwoMembers => {
            let (a, b) = snapshot.split_at(snapshot.len() / 2);
            (gzip(&[a, b]), true)
        }
        Packing::RawGz => (snapshot.to_vec(), true),
    };
    let mut name = match (mode.explicit_format, mode.format) {
        (true, _) => "snapshot.txt".to_string(),
        (false, Format::Csv) => "snapshot.csv".to_string(),
        (false, Format::Jsonl) => "snapshot.jsonl".to_string(),
    };
    if gz {
        name.push_str(".gz");
    }
    let file = dir.path().join(name);
    std::fs::write(&file, &bytes).expect("the snapshot is written");
    let options = ImportOptions {
        at: mode.at.then_some(common::T0 + 12 * common::HOUR),
        format: mode.explicit_format.then_some(mode.format),
        skip_bad: mode.skip_bad,
        shard: None,
    };

    let mut writer = db.writer().expect("the writer opens");
    let imported = writer.import(&[Input::Path(file)], &options, |_| {});
    let summary = match imported {
        Err(e) => {
            // Rolling back is dropping the writer ([IM12]).
            drop(writer);
            assert_eq!(
                common::file_names(&db_dir),
                files_before,
                "a failed import ({e}) left files behind"
            );
            db.refresh().expect("the database refreshes");
            let after = common::dump(&db).expect("the database reads after a failed import");
            assert!(after == before, "a failed import ({e}) changed the data");
            let reopened = Db::open(&db_dir).expect("the database reopens");
            assert!(
                common::dump(&reopened).expect("the reopened database reads") == before,
                "a failed import ({e}) changed the data on disk"
            );
            let report = Db::verify(&db_dir).expect("verify runs");
            assert!(report.is_clean(), "after {e}: {:?}", report.problems);
            return;
        }
        Ok(summary) => summary,
    };
    if let Err(e) = writer.commit() {
        panic!("the commit of a successful import failed: {e}");
    }
    drop(writer);
    let report = Db::verify(&db_dir).expect("verify runs");
    assert!(report.is_clean(), "{:?}", report.problems);
    let after = common::dump(&Db::open(&db_dir).expect("the database reopens"))
        .expect("the database reads after the import");
    common::check_plausible(&after);
    let keys = |dump: &common::Dump| -> BTreeSet<(String, String, i64)> {
        dump.iter()
            .flat_map(|((a, m), points)| points.iter().map(|p| (a.clone(), m.clone(), p.time)))
            .collect()
    };
    let (old, new) = (keys(&before), keys(&after));
    assert!(old.is_subset(&new), "the import lost points");
    assert!(
        (new.len() - old.len()) as u64 <= summary.points,
        "the import added {} points but pushed {}",
        new.len() - old.len(),
        summary.points
    );
}

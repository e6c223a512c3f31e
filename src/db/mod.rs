//! The database directory: opening it, the committed snapshot readers see,
//! the writer and its lock, recovery, compaction, the dictionary index,
//! statistics and verification.

mod compact;
mod dict_index;
#[cfg(test)]
mod durability_tests;
mod flush;
mod frame;
mod lock;
mod manifest;
mod merge;
#[cfg(test)]
mod merge_model;
mod recovery;
pub(crate) mod snapshot;
mod verify;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

pub use compact::CompactSummary;
pub use merge::MergeSummary;
pub use snapshot::TimeRange;
pub use verify::VerifyReport;
pub use writer::{CommitSummary, Writer};

use crate::error::{Error, Result};
use crate::storage::fs::{FileSystem, std_fs};
use manifest::Manifest;
use snapshot::Snapshot;

/// How to open a database.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// Create the directory if it does not exist (default: true).
    pub create: bool,
    /// Bytes of memory a writer may use to buffer points before it spills
    /// them into a segment (default: 256 MiB). A batch larger than this is
    /// written as several segments and still committed atomically. A batch
    /// of snapshots in time order needs only one snapshot's worth: each is
    /// written as a head frame as soon as the next begins (docs/format.md, rule
    /// HD3).
    pub memory_budget: usize,
    /// Merge segments after every commit, as docs/format.md ("Merging")
    /// describes (default: true). Off, segments pile up until
    /// [`Writer::merge`] or [`Db::compact`] is called.
    pub auto_merge: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            create: true,
            // 256 MiB. Snapshots in time order are written a frame at a
            // time whatever the budget; a bulk import of many series in
            // any other order spills a segment every 4.8 M points, and the
            // join after it reads them all (docs/performance.md, "Memory").
            memory_budget: 256 << 20,
            auto_merge: true,
        }
    }
}

impl Options {
    /// Sets [`Options::create`].
    pub fn create(mut self, create: bool) -> Self {
        self.create = create;
        self
    }

    /// Sets [`Options::auto_merge`].
    pub fn auto_merge(mut self, on: bool) -> Self {
        self.auto_merge = on;
        self
    }

    /// Sets [`Options::memory_budget`].
    pub fn memory_budget(mut self, bytes: usize) -> Self {
        self.memory_budget = bytes;
        self
    }
}

/// One point of a series: a time in milliseconds since the Unix epoch and a
/// count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Point {
    /// Milliseconds since the Unix epoch.
    pub time: i64,
    /// The count at that time.
    pub count: u64,
}

/// A series, named.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Series {
    /// The account.
    pub account: String,
    /// The metric.
    pub metric: String,
}

/// What `stats` reports of a database.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Series (account, metric pairs).
    pub series: u64,
    /// Distinct accounts.
    pub accounts: u64,
    /// Distinct metrics.
    pub metrics: u64,
    /// Points stored. A point overwritten by a later commit is counted
    /// until a compaction drops it.
    pub points: u64,
    /// The earliest and latest time stored, in milliseconds.
    pub time_range: Option<(i64, i64)>,
    /// Segment files.
    pub segments: u64,
    /// Bytes of every file of the database.
    pub bytes_on_disk: u64,
}

impl Stats {
    /// Bytes on disk per stored point, or 0 for an empty database.
    pub fn bytes_per_point(&self) -> f64 {
        if self.points == 0 {
            0.0
        } else {
            self.bytes_on_disk as f64 / self.points as f64
        }
    }
}

/// A tally database: a directory of immutable segments, a series dictionary
/// and a manifest.
///
/// `Db` is cheap to clone and can be shared between threads. Reads see the
/// committed state as of the last [`refresh`](Db::refresh) (or the last
/// commit through this handle); any number of processes may read while one
/// writes.
///
/// ```
/// # fn main() -> tally::Result<()> {
/// let dir = tempfile::tempdir().unwrap();
/// let db = tally::Db::open(dir.path().join("example.db"))?;
/// let mut writer = db.writer()?;
/// writer.append("adela_mae", "followers", 1_550_052_000_000, 10_234)?;
/// writer.append("adela_mae", "followers", 1_550_055_600_000, 224)?;
/// writer.commit()?;
/// let points = db.points("adela_mae", "followers", tally::TimeRange::ALL)?;
/// assert_eq!(points.len(), 2);
/// assert_eq!(db.stats()?.series, 1);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    options: Options,
    /// Where every write goes (docs/format.md, [I8]).
    fs: Arc<dyn FileSystem>,
    snapshot: RwLock<Arc<Snapshot>>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("dir", &self.inner.dir).finish()
    }
}

impl Db {
    /// Opens the database in directory `path`, creating it if it does not
    /// exist.
    pub fn open(path: impl AsRef<Path>) -> Result<Db> {
        Db::open_with(path, Options::default())
    }

    /// Opens the database in directory `path` with `options`.
    pub fn open_with(path: impl AsRef<Path>, options: Options) -> Result<Db> {
        Db::open_on(std_fs(), path.as_ref(), options)
    }

    /// Opens the database in `dir` with every write going through `fs`.
    pub(crate) fn open_on(fs: Arc<dyn FileSystem>, dir: &Path, options: Options) -> Result<Db> {
        let dir = dir.to_path_buf();
        match std::fs::metadata(&dir) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(Error::Invalid(format!(
                    "{} is not a directory, so it cannot be a tally database",
                    dir.display()
                )));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && options.create => {
                create_dir_durably(&*fs, &dir)?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::Invalid(format!(
                    "no database at {} (import some snapshots to create one)",
                    dir.display()
                )));
            }
            Err(e) => return Err(Error::io(&dir, e)),
        }
        let snapshot = Snapshot::load(&dir)?;
        Ok(Db {
            inner: Arc::new(Inner {
                dir,
                options,
                fs,
                snapshot: RwLock::new(Arc::new(snapshot)),
            }),
        })
    }

    /// The database directory.
    pub fn path(&self) -> &Path {
        &self.inner.dir
    }

    pub(crate) fn options(&self) -> &Options {
        &self.inner.options
    }

    pub(crate) fn fs(&self) -> &Arc<dyn FileSystem> {
        &self.inner.fs
    }

    /// Takes the write lock and returns a writer. Fails with
    /// [`Error::Locked`] while another writer (in this process or another)
    /// holds it.
    pub fn writer(&self) -> Result<Writer> {
        Writer::new(self)
    }

    /// Loads the latest committed state, if it changed since this handle
    /// last looked.
    pub fn refresh(&self) -> Result<()> {
        let current = self.snapshot();
        let manifest = Manifest::load(&self.inner.dir)?;
        if manifest.generation != current.manifest.generation {
            self.publish(Arc::new(Snapshot::load(&self.inner.dir)?));
        }
        Ok(())
    }

    pub(crate) fn snapshot(&self) -> Arc<Snapshot> {
        match self.inner.snapshot.read() {
            Ok(guard) => Arc::clone(&guard),
            // A panic while holding the lock cannot leave the Arc half
            // replaced; the value is still a whole snapshot.
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    pub(crate) fn publish(&self, snapshot: Arc<Snapshot>) {
        match self.inner.snapshot.write() {
            Ok(mut guard) => *guard = snapshot,
            Err(poisoned) => *poisoned.into_inner() = snapshot,
        }
    }

    /// The points of one series within `range`, in time order. A series
    /// that does not exist has no points.
    pub fn points(&self, account: &str, metric: &str, range: TimeRange) -> Result<Vec<Point>> {
        let snapshot = self.snapshot();
        let dict = &snapshot.dict;
        let Some(metric_id) = dict.metric_id(metric) else {
            return Ok(Vec::new());
        };
        let series = dict
            .account_id(account)
            .and_then(|account| dict.series_id(account, metric_id));
        if let Some(damage) = dict.damage() {
            return Err(damage);
        }
        let Some(series) = series else {
            return Ok(Vec::new());
        };
        let (mut times, mut values) = (Vec::new(), Vec::new());
        snapshot.read_series(series, range, &mut times, &mut values)?;
        Ok(times
            .into_iter()
            .zip(values)
            .map(|(time, count)| Point { time, count })
            .collect())
    }

    /// The metrics of the database, sorted.
    pub fn metrics(&self) -> Vec<String> {
        let snapshot = self.snapshot();
        let mut names: Vec<String> = snapshot
            .dict
            .metrics
            .iter()
            .map(|(_, n)| n.to_string())
            .collect();
        names.sort();
        names
    }

    /// The accounts of the database, sorted by their UTF-8 bytes.
    ///
    /// Fails when a page of the dictionary index it read was damaged
    /// (\[DX2\] in docs/format.md): the list would otherwise miss the
    /// names on that page, or hold an empty one in their place.
    pub fn accounts(&self) -> Result<Vec<String>> {
        let snapshot = self.snapshot();
        let mut names: Vec<String> = snapshot
            .dict
            .accounts()
            .map(|(_, n)| n.to_string())
            .collect();
        if let Some(damage) = snapshot.dict.damage() {
            return Err(damage);
        }
        names.sort();
        Ok(names)
    }

    /// The series of `metric` whose account satisfies `accept`, sorted by
    /// account. Fails as [`Db::accounts`] does on a damaged index page.
    pub fn series(&self, metric: &str, accept: impl Fn(&str) -> bool) -> Result<Vec<Series>> {
        let snapshot = self.snapshot();
        let dict = &snapshot.dict;
        let Some(metric_id) = dict.metric_id(metric) else {
            return Ok(Vec::new());
        };
        let mut out: Vec<Series> = dict
            .series_of_metric(metric_id)
            .filter_map(|s| dict.series_key(s))
            .map(|k| dict.account_name(k.account))
            .filter(|a| accept(a))
            .map(|a| Series {
                account: a.to_string(),
                metric: metric.to_string(),
            })
            .collect();
        if let Some(damage) = dict.damage() {
            return Err(damage);
        }
        out.sort();
        Ok(out)
    }

    /// Counts of what the database holds and what it costs on disk.
    pub fn stats(&self) -> Result<Stats> {
        let snapshot = self.snapshot();
        let m = &snapshot.manifest;
        // Reading the manifest checked that these sums fit ([M9]), and the
        // files were found to have the lengths it records; the sums are
        // still checked, so that a manifest that got past those checks is
        // reported as damage rather than wrapped or panicked on.
        let damaged = |what: &str| {
            Error::corrupt(
                self.inner.dir.join(manifest::MANIFEST),
                format!("the {what} add up to more than 2^64 - 1"),
            )
        };
        let points = m
            .segments
            .iter()
            .try_fold(0u64, |sum, s| sum.checked_add(s.points))
            .ok_or_else(|| damaged("segments' point counts"))?;
        let time_range = m
            .segments
            .iter()
            .map(|s| (s.t_min, s.t_max))
            .reduce(|a, b| (a.0.min(b.0), a.1.max(b.1)));
        let manifest_len = if m.generation > 0 { manifest_len(m) } else { 0 };
        let bytes_on_disk = m
            .segments
            .iter()
            .map(|s| s.file_len)
            .chain([m.dict_len, manifest_len, m.index.map_or(0, |i| i.file_len)])
            .try_fold(0u64, u64::checked_add)
            .ok_or_else(|| damaged("lengths of the dictionary and the segments"))?;
        Ok(Stats {
            series: u64::from(m.series),
            accounts: u64::from(m.accounts),
            metrics: u64::from(m.metrics),
            points,
            time_range,
            segments: m.segments.len() as u64,
            bytes_on_disk,
        })
    }

    /// Merges segments into as few as possible (see [`Writer::compact`]).
    pub fn compact(&self) -> Result<CompactSummary> {
        self.writer()?.compact()
    }

    /// Reads every checksummed byte of the database at `path` and reports
    /// what is damaged. Works on databases too damaged to open.
    pub fn verify(path: impl AsRef<Path>) -> Result<VerifyReport> {
        verify::verify(path.as_ref())
    }
}

/// Creates `dir` and every missing ancestor, and makes each creation
/// durable by syncing the directory that holds the new entry ([I7]): the
/// parent of the first directory created, then each directory created but
/// the last. Without that, a power loss after the first commit could lose
/// the database's directory entry, and with it every file the commit made
/// durable inside. Returns the directories synced, outermost first.
pub(crate) fn create_dir_durably(fs: &dyn FileSystem, dir: &Path) -> Result<Vec<PathBuf>> {
    // The ancestors that do not exist yet, innermost first; `dir` is one.
    let mut missing = Vec::new();
    for ancestor in dir.ancestors() {
        if ancestor.as_os_str().is_empty() || ancestor.exists() {
            break;
        }
        missing.push(ancestor);
    }
    let mut synced = Vec::with_capacity(missing.len());
    for created in missing.iter().rev() {
        match fs.create_dir(created) {
            Ok(()) => {}
            // Another process made it meanwhile; whoever made it syncs it.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && created.is_dir() => {}
            Err(e) => return Err(Error::io(created, e)),
        }
        // A relative path's first component has the empty path as its
        // parent, which is the current directory.
        let parent = match created.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        manifest::sync_dir(fs, parent)?;
        synced.push(parent.to_path_buf());
    }
    Ok(synced)
}

/// The length of the manifest file `m` is written as: its version (1, 2
/// or 3, [M1]) decides the fixed part.
fn manifest_len(m: &Manifest) -> u64 {
    m.encode().len() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::fs::StdFs;
    use crate::storage::segment::SegmentMeta;

    /// A handle on `manifest` as if it had been read, without the checks
    /// of reading it.
    fn db_with(dir: &Path, manifest: Manifest) -> Db {
        let snapshot = Snapshot {
            dir: dir.to_path_buf(),
            manifest,
            dict: Arc::default(),
            segments: Vec::new(),
        };
        Db {
            inner: Arc::new(Inner {
                dir: dir.to_path_buf(),
                options: Options::default(),
                fs: std_fs(),
                snapshot: RwLock::new(Arc::new(snapshot)),
            }),
        }
    }

    #[test]
    fn creating_a_database_directory_syncs_the_parent_of_each_new_directory() {
        // [I7]
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a").join("b").join("tally.db");
        let synced = create_dir_durably(&StdFs, &dir).unwrap();
        assert!(dir.is_dir());
        assert_eq!(
            synced,
            [
                root.path().to_path_buf(),
                root.path().join("a"),
                root.path().join("a").join("b"),
            ]
        );
        // Only what is new: the parent of the one directory created.
        let sibling = root.path().join("a").join("other.db");
        assert_eq!(
            create_dir_durably(&StdFs, &sibling).unwrap(),
            [root.path().join("a")]
        );
        // Nothing is created, so nothing is synced.
        assert_eq!(
            create_dir_durably(&StdFs, &sibling).unwrap(),
            Vec::<PathBuf>::new()
        );
        // Db::open creates through it.
        let opened = root.path().join("c").join("tally.db");
        Db::open(&opened).unwrap();
        assert!(opened.is_dir());
    }

    #[test]
    fn a_relative_directory_syncs_the_current_directory() {
        // [I7]: the parent of a relative first component is ".". The test
        // cannot change the process's current directory (tests run in
        // parallel), so it creates under it a name no one else uses.
        let name = format!("tally-create-test-{}", std::process::id());
        let dir = Path::new(&name).join("x");
        let synced = create_dir_durably(&StdFs, &dir).unwrap();
        std::fs::remove_dir_all(&name).unwrap();
        assert_eq!(synced, [PathBuf::from("."), PathBuf::from(&name)]);
    }

    #[test]
    fn stats_reports_totals_past_a_u64_as_damage_to_the_manifest() {
        // [M9]: it used to panic on the sum in debug builds and wrap in
        // release ones.
        let dir = tempfile::tempdir().unwrap();
        let segment = |number, points, file_len| SegmentMeta {
            number,
            file_len,
            points,
            t_min: 0,
            t_max: 1,
            head: false,
        };
        let mut manifest = Manifest {
            generation: 2,
            dict_len: 100,
            metrics: 1,
            accounts: 1,
            series: 1,
            next_segment: 3,
            segments: vec![segment(1, 1 << 63, 1000), segment(2, 1 << 63, 1000)],
            index: None,
        };
        let err = db_with(dir.path(), manifest.clone())
            .stats()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("MANIFEST: damaged: the segments' point counts add up to more than"),
            "{err}"
        );
        manifest.segments = vec![segment(1, 5, u64::MAX - 50), segment(2, 5, 10)];
        let err = db_with(dir.path(), manifest.clone())
            .stats()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("the lengths of the dictionary and the segments add up"),
            "{err}"
        );
        manifest.segments = vec![segment(1, 5, 1000), segment(2, 5, 10)];
        let stats = db_with(dir.path(), manifest.clone()).stats().unwrap();
        assert_eq!(
            (stats.points, stats.bytes_on_disk),
            (10, 1000 + 10 + 100 + 60 + 80)
        );
        // Every file counts: the dictionary index too, and a version-2
        // manifest is 16 bytes longer ([M1], [M11]).
        manifest.index = Some(manifest::IndexMeta {
            number: 7,
            file_len: 4000,
        });
        manifest.next_segment = 8;
        let stats = db_with(dir.path(), manifest).stats().unwrap();
        assert_eq!(stats.bytes_on_disk, 1000 + 10 + 100 + 76 + 80 + 4000);
    }
}

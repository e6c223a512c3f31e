//! Where rows come from: the inputs as given, expanded into a list of files
//! ([IM1]), each with its format ([IM2]); and the opening of one of them as a
//! stream of decompressed ([IM3]), BOM-stripped ([IM4]) bytes.

use std::cell::Cell;
use std::fs::File;
use std::io::{self, BufReader, Cursor, Read};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};

use flate2::bufread::MultiGzDecoder;

use super::{Format, Input};
use crate::{Error, Result};

/// The extensions that make a file in a folder a snapshot file, and their
/// formats. `.gz` may follow any of them.
const EXTENSIONS: [(&str, Format); 3] = [
    (".csv", Format::Csv),
    (".jsonl", Format::Jsonl),
    (".ndjson", Format::Jsonl),
];

/// The two bytes every gzip member starts with.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The UTF-8 byte order mark, which some programs write at the start of a
/// text file.
const BOM: [u8; 3] = [0xef, 0xbb, 0xbf];

/// How much of standard input is looked at to tell its format before giving
/// up and taking it as CSV.
const SNIFF_LIMIT: usize = 64 * 1024;

/// The size of the read buffers between the file and the parsers: large
/// enough that system calls and decompressor calls cost nothing per row.
pub(super) const READ_BUFFER: usize = 256 * 1024;

/// One file to import, found before any of them is read.
#[derive(Debug, Clone)]
pub(super) struct Source {
    /// The name errors use: the path as the user gave it (a folder's path
    /// joined with the file name), or `-`.
    pub display: String,
    /// The file to open, or `None` for standard input.
    pub path: Option<PathBuf>,
    /// Whether the bytes are gzip; `None` to tell from the first bytes
    /// (standard input).
    pub gzip: Option<bool>,
    /// The format; `None` to tell from the first bytes (standard input).
    pub format: Option<Format>,
    /// The size in bytes, when known.
    pub size: Option<u64>,
}

impl Source {
    /// True for standard input.
    pub fn is_stdin(&self) -> bool {
        self.path.is_none()
    }
}

/// An error about a whole file, reported at line 0 ([IM12]).
fn file_error(display: &str, reason: String) -> Error {
    Error::Import {
        file: display.to_string(),
        line: 0,
        reason,
    }
}

/// The reason for a file that cannot be opened or listed.
fn open_reason(error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::NotFound => "no such file or folder".to_string(),
        _ => format!("cannot open it: {error}"),
    }
}

/// What a file name says: its format (if its extension is a known one) and
/// whether it ends in `.gz`. Extensions are compared without regard to ASCII
/// case.
pub(super) fn classify(name: &[u8]) -> (Option<Format>, bool) {
    let strip = |name: &'_ [u8], suffix: &str| -> Option<usize> {
        let stem = name.len().checked_sub(suffix.len())?;
        let tail = name.get(stem..)?;
        tail.eq_ignore_ascii_case(suffix.as_bytes()).then_some(stem)
    };
    let (stem, gzip) = match strip(name, ".gz") {
        Some(stem) => (name.get(..stem).unwrap_or_default(), true),
        None => (name, false),
    };
    let format = EXTENSIONS
        .iter()
        .find(|(extension, _)| strip(stem, extension).is_some())
        .map(|&(_, format)| format);
    (format, gzip)
}

/// Expands the inputs into the files to read, in order, checking that each
/// exists and has a format before anything is read.
pub(super) fn expand(inputs: &[Input], forced: Option<Format>) -> Result<Vec<Source>> {
    let mut sources = Vec::new();
    let mut stdin_seen = false;
    for input in inputs {
        match input {
            Input::Stdin => {
                if stdin_seen {
                    return Err(Error::Invalid(
                        "standard input (-) can be imported only once".to_string(),
                    ));
                }
                stdin_seen = true;
                sources.push(Source {
                    display: "-".to_string(),
                    path: None,
                    gzip: None,
                    format: forced,
                    size: None,
                });
            }
            Input::Path(path) => expand_path(path, forced, &mut sources)?,
        }
    }
    Ok(sources)
}

fn expand_path(path: &Path, forced: Option<Format>, sources: &mut Vec<Source>) -> Result<()> {
    let display = path.display().to_string();
    let metadata = std::fs::metadata(path).map_err(|e| file_error(&display, open_reason(&e)))?;
    if !metadata.is_dir() {
        let name = path.file_name().unwrap_or(path.as_os_str());
        let (format, gzip) = classify(name.as_encoded_bytes());
        let Some(format) = forced.or(format) else {
            return Err(file_error(
                &display,
                "cannot tell the format from the file name: expected .csv, .jsonl or .ndjson \
                 (optionally followed by .gz), or give --format"
                    .to_string(),
            ));
        };
        sources.push(Source {
            display,
            path: Some(path.to_path_buf()),
            gzip: Some(gzip),
            format: Some(format),
            // A named pipe or a device has no size to show progress against.
            size: metadata.is_file().then_some(metadata.len()),
        });
        return Ok(());
    }

    let listing_error = |e: io::Error| file_error(&display, format!("cannot list the folder: {e}"));
    let mut found = Vec::new();
    for entry in std::fs::read_dir(path).map_err(listing_error)? {
        let entry = entry.map_err(listing_error)?;
        let name = entry.file_name();
        let (format, gzip) = classify(name.as_encoded_bytes());
        // Only the extension selects a file; --format then overrides how it
        // is read.
        let Some(named_format) = format else {
            continue;
        };
        let format = forced.unwrap_or(named_format);
        let file_path = path.join(&name);
        // Follow symbolic links, and skip folders whose names look like
        // files: the import is not recursive.
        let metadata = std::fs::metadata(&file_path)
            .map_err(|e| file_error(&file_path.display().to_string(), open_reason(&e)))?;
        if metadata.is_dir() {
            continue;
        }
        found.push((
            name,
            Source {
                display: file_path.display().to_string(),
                path: Some(file_path),
                gzip: Some(gzip),
                format: Some(format),
                size: metadata.is_file().then_some(metadata.len()),
            },
        ));
    }
    if found.is_empty() {
        return Err(file_error(
            &display,
            "the folder has no snapshot files (.csv, .jsonl or .ndjson, optionally followed by .gz)"
                .to_string(),
        ));
    }
    found.sort_by(|(a, _), (b, _)| a.as_encoded_bytes().cmp(b.as_encoded_bytes()));
    sources.extend(found.into_iter().map(|(_, source)| source));
    Ok(())
}

/// What is known of the raw (possibly compressed) bytes read so far, over
/// all files. Shared with the thread that inflates gzip files.
#[derive(Debug, Default)]
pub(super) struct RawStats {
    /// Bytes read from all inputs.
    bytes: AtomicU64,
    /// Set when reading the current file itself failed, as opposed to
    /// decompressing what was read.
    read_failed: AtomicBool,
}

impl RawStats {
    /// Bytes read from all inputs so far. For a gzip file being inflated on
    /// its own thread, this may run a few chunks ahead of the rows.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

/// Counts the bytes read from a file, and notes a failed read.
struct CountedRaw<R> {
    inner: R,
    stats: Arc<RawStats>,
}

impl<R: Read> Read for CountedRaw<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.stats.bytes.fetch_add(n as u64, Ordering::Relaxed);
                Ok(n)
            }
            Err(e) => {
                if e.kind() != io::ErrorKind::Interrupted {
                    // The error reaches the reader thread through a channel
                    // (or on this thread), which orders this store before
                    // the reader looks at the flag.
                    self.stats.read_failed.store(true, Ordering::Relaxed);
                }
                Err(e)
            }
        }
    }
}

/// How much decompressed text the inflating thread hands over at a time.
const INFLATED_CHUNK: usize = 256 * 1024;

/// How many inflated chunks may wait for the reader thread.
const INFLATED_CHUNKS_AHEAD: usize = 3;

/// The text of a gzip file, inflated on a thread of its own so that
/// inflating, the costliest step of a gzip import, overlaps with parsing.
/// The thread ends at the end of the file (which it marks with an empty
/// chunk), at an error (which it passes on after the text before it), or
/// when this reader is dropped.
struct InflatedText {
    chunks: Receiver<io::Result<Vec<u8>>>,
    /// Used chunks go back to the inflating thread for reuse.
    spent: SyncSender<Vec<u8>>,
    current: Vec<u8>,
    position: usize,
    finished: bool,
}

impl InflatedText {
    fn spawn(stored: Box<dyn Read + Send>) -> io::Result<InflatedText> {
        let (send_chunk, chunks) = mpsc::sync_channel(INFLATED_CHUNKS_AHEAD);
        let (spent, receive_spent) = mpsc::sync_channel::<Vec<u8>>(INFLATED_CHUNKS_AHEAD + 2);
        std::thread::Builder::new()
            .name("tally-import-gunzip".to_string())
            .spawn(move || {
                let mut decoder =
                    MultiGzDecoder::new(BufReader::with_capacity(READ_BUFFER, stored));
                loop {
                    let mut chunk = receive_spent.try_recv().unwrap_or_default();
                    chunk.clear();
                    chunk.resize(INFLATED_CHUNK, 0);
                    let (filled, error) = fill(&mut decoder, &mut chunk);
                    chunk.truncate(filled);
                    if filled > 0 && send_chunk.send(Ok(chunk)).is_err() {
                        return;
                    }
                    if let Some(error) = error {
                        let _ = send_chunk.send(Err(error));
                        return;
                    }
                    if filled < INFLATED_CHUNK {
                        // The end of the file, said with an empty chunk:
                        // the channel closing without it means this thread
                        // died, which must not pass for the end of the file.
                        let _ = send_chunk.send(Ok(Vec::new()));
                        return;
                    }
                }
            })?;
        Ok(InflatedText {
            chunks,
            spent,
            current: Vec::new(),
            position: 0,
            finished: false,
        })
    }
}

/// Reads into all of `buffer` unless the input ends or fails first; returns
/// how much was read, and the error if one ended it.
fn fill(reader: &mut impl Read, buffer: &mut [u8]) -> (usize, Option<io::Error>) {
    let mut filled = 0;
    while let Some(rest) = buffer.get_mut(filled..).filter(|rest| !rest.is_empty()) {
        match reader.read(rest) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (filled, Some(e)),
        }
    }
    (filled, None)
}

impl Read for InflatedText {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(rest) = self.current.get(self.position..)
                && !rest.is_empty()
            {
                let n = rest.len().min(buf.len());
                buf.get_mut(..n)
                    .unwrap_or_default()
                    .copy_from_slice(rest.get(..n).unwrap_or_default());
                self.position += n;
                return Ok(n);
            }
            if self.finished {
                return Ok(0);
            }
            let spent = std::mem::take(&mut self.current);
            let _ = self.spent.try_send(spent);
            self.position = 0;
            match self.chunks.recv() {
                Ok(Ok(chunk)) if chunk.is_empty() => self.finished = true,
                Ok(Ok(chunk)) => self.current = chunk,
                Ok(Err(error)) => {
                    self.finished = true;
                    return Err(error);
                }
                Err(_) => {
                    self.finished = true;
                    return Err(io::Error::other(
                        "the thread inflating it stopped unexpectedly",
                    ));
                }
            }
        }
    }
}

/// Counts the decompressed bytes of one file.
struct CountedText<R> {
    inner: R,
    count: Rc<Cell<u64>>,
}

impl<R: Read> Read for CountedText<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

/// A file opened for parsing.
pub(super) struct Opened {
    /// The text of the file: decompressed, without its byte order mark.
    pub text: Box<dyn Read>,
    /// Its format.
    pub format: Format,
    /// Whether it is gzip.
    pub gzip: bool,
    /// How many bytes of text have been produced so far; still 0 when a gzip
    /// header was bad.
    pub text_bytes: Rc<Cell<u64>>,
}

impl Opened {
    /// Turns an error met while reading into a `file:line: reason` error.
    /// `line` is the line being read; the error is put at line 0 when not a
    /// byte of text could be read ([IM12]).
    pub fn read_error(&self, display: &str, line: u64, error: &io::Error, raw: &RawStats) -> Error {
        let reason = if raw.read_failed.load(Ordering::Relaxed) || !self.gzip {
            format!("cannot read the file: {error}")
        } else if error.kind() == io::ErrorKind::UnexpectedEof {
            format!("the gzip data ends early; the file is truncated ({error})")
        } else {
            format!("the gzip data is broken ({error})")
        };
        Error::Import {
            file: display.to_string(),
            line: if self.text_bytes.get() == 0 { 0 } else { line },
            reason,
        }
    }
}

/// Reads from `reader` until `enough` says the bytes read so far suffice, or
/// the input ends. On an error, also returns what was read before it.
fn read_prefix(
    reader: &mut impl Read,
    enough: impl Fn(&[u8]) -> bool,
) -> (Vec<u8>, Option<io::Error>) {
    let mut prefix = Vec::new();
    let mut chunk = [0u8; 8192];
    while !enough(&prefix) {
        match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => prefix.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (prefix, Some(e)),
        }
    }
    (prefix, None)
}

/// The format of standard input, from its first bytes ([IM2]): JSON lines if
/// the first byte that is not blank is `{`, CSV otherwise.
fn sniff_format(text: &[u8]) -> Format {
    match text.iter().find(|b| !b" \t\r\n".contains(b)) {
        Some(b'{') => Format::Jsonl,
        _ => Format::Csv,
    }
}

/// Opens one source. `stdin` is taken when the source is standard input.
pub(super) fn open(
    source: &Source,
    stdin: &mut Option<Box<dyn Read + Send>>,
    raw: &Arc<RawStats>,
) -> Result<Opened> {
    raw.read_failed.store(false, Ordering::Relaxed);
    let file: Box<dyn Read + Send> = match &source.path {
        Some(path) => {
            Box::new(File::open(path).map_err(|e| file_error(&source.display, open_reason(&e)))?)
        }
        None => match stdin.take() {
            Some(stdin) => stdin,
            None => {
                return Err(file_error(
                    &source.display,
                    "standard input was already read".to_string(),
                ));
            }
        },
    };
    let mut counted = CountedRaw {
        inner: file,
        stats: Arc::clone(raw),
    };

    let (gzip, stored): (bool, Box<dyn Read + Send>) = match source.gzip {
        Some(gzip) => (gzip, Box::new(counted)),
        None => {
            let (prefix, error) = read_prefix(&mut counted, |p| p.len() >= GZIP_MAGIC.len());
            if let Some(e) = error {
                return Err(file_error(
                    &source.display,
                    format!("cannot read the file: {e}"),
                ));
            }
            let gzip = prefix.starts_with(&GZIP_MAGIC);
            (gzip, Box::new(Cursor::new(prefix).chain(counted)))
        }
    };
    let decoded: Box<dyn Read> = if gzip {
        let inflated = InflatedText::spawn(stored).map_err(|e| {
            file_error(
                &source.display,
                format!("cannot start a thread to inflate it: {e}"),
            )
        })?;
        Box::new(inflated)
    } else {
        stored
    };
    let text_bytes = Rc::new(Cell::new(0));
    let mut text = CountedText {
        inner: decoded,
        count: Rc::clone(&text_bytes),
    };

    // Read enough to see a byte order mark, and, when the format must be
    // told from the content, the first byte that is not blank.
    let sniff = source.format.is_none();
    let enough = |prefix: &[u8]| {
        prefix.len() >= SNIFF_LIMIT
            || (prefix.len() >= BOM.len()
                && (!sniff
                    || prefix
                        .iter()
                        .skip(usize::from(prefix.starts_with(&BOM)) * BOM.len())
                        .any(|b| !b" \t\r\n".contains(b))))
    };
    let mut opened = Opened {
        text: Box::new(io::empty()),
        format: source.format.unwrap_or(Format::Csv),
        gzip,
        text_bytes,
    };
    let (mut prefix, error) = read_prefix(&mut text, enough);
    if let Some(e) = error {
        // The line being read is the one after the last newline read.
        let newlines = prefix.iter().filter(|&&b| b == b'\n').count() as u64;
        return Err(opened.read_error(&source.display, 1 + newlines, &e, raw));
    }
    if prefix.starts_with(&BOM) {
        prefix.drain(..BOM.len());
    }
    if sniff {
        opened.format = sniff_format(&prefix);
    }
    opened.text = Box::new(Cursor::new(prefix).chain(text));
    Ok(opened)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_tell_format_and_compression_in_any_case() {
        assert_eq!(classify(b"a.csv"), (Some(Format::Csv), false));
        assert_eq!(classify(b"a.CSV.GZ"), (Some(Format::Csv), true));
        assert_eq!(classify(b"a.jsonl"), (Some(Format::Jsonl), false));
        assert_eq!(classify(b"a.ndjson.gz"), (Some(Format::Jsonl), true));
        assert_eq!(classify(b"a.json"), (None, false));
        assert_eq!(classify(b"a.txt.gz"), (None, true));
        assert_eq!(classify(b"gz"), (None, false));
        assert_eq!(classify(b"csv"), (None, false));
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(bytes).expect("compressing in memory");
        encoder.finish().expect("compressing in memory")
    }

    #[test]
    fn inflated_text_crosses_chunks_and_passes_errors_on() {
        for length in [
            0,
            1,
            INFLATED_CHUNK - 1,
            INFLATED_CHUNK,
            2 * INFLATED_CHUNK + 7,
        ] {
            let text: Vec<u8> = (0..length).map(|i| (i * 7 % 251) as u8).collect();
            let mut inflated =
                InflatedText::spawn(Box::new(Cursor::new(gzip(&text)))).expect("a thread");
            let mut out = Vec::new();
            inflated.read_to_end(&mut out).expect("a whole stream");
            assert!(out == text, "{length} bytes");
        }
        let text: Vec<u8> = (0..3 * INFLATED_CHUNK).map(|i| (i % 13) as u8).collect();
        let mut compressed = gzip(&text);
        compressed.truncate(compressed.len() - 100);
        let mut inflated =
            InflatedText::spawn(Box::new(Cursor::new(compressed))).expect("a thread");
        let mut out = Vec::new();
        let error = inflated
            .read_to_end(&mut out)
            .expect_err("a truncated stream");
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
        assert!(out.len() > INFLATED_CHUNK && text.starts_with(&out));
    }

    #[test]
    fn sniffing_looks_at_the_first_byte_that_is_not_blank() {
        assert_eq!(sniff_format(b"\n  \r\n\t{\"a\":1}"), Format::Jsonl);
        assert_eq!(sniff_format(b"time,account,x"), Format::Csv);
        assert_eq!(sniff_format(b"  "), Format::Csv);
        assert_eq!(sniff_format(b""), Format::Csv);
    }
}

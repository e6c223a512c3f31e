//! Tests of whole imports against docs/import.md, through [`VecSink`] and
//! files in a temporary folder. Each test names the rules it checks.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::vec_sink::VecSink;
use super::*;

const T0: i64 = 1_550_052_000_000; // 2019-02-13T10:00:00Z
const T1: i64 = 1_550_055_600_000; // 2019-02-13T11:00:00Z

fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary folder")
}

fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("writing a test file");
    path
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("compressing in memory");
    encoder.finish().expect("compressing in memory")
}

fn opts() -> ImportOptions {
    ImportOptions::default()
}

fn import(sink: &mut VecSink, paths: &[&Path], opts: ImportOptions) -> Result<ImportSummary> {
    let inputs: Vec<Input> = paths.iter().map(|p| Input::Path(p.to_path_buf())).collect();
    import_into(sink, &inputs, &opts, &mut |_| {})
}

fn import_stdin(
    sink: &mut VecSink,
    inputs: &[Input],
    opts: ImportOptions,
    stdin: &[u8],
) -> Result<ImportSummary> {
    let stdin = stdin.to_vec();
    import_with_stdin(sink, inputs, &opts, &mut |_| {}, move || {
        Box::new(std::io::Cursor::new(stdin))
    })
}

/// Imports one file with the given content and returns the sink.
fn import_text(
    name: &str,
    text: impl AsRef<[u8]>,
    opts: ImportOptions,
) -> (VecSink, Result<ImportSummary>, PathBuf, tempfile::TempDir) {
    let dir = temp_dir();
    let path = write(dir.path(), name, text);
    let mut sink = VecSink::default();
    let result = import(&mut sink, &[&path], opts);
    (sink, result, path, dir)
}

/// The error of an import as `file:line: reason`, with the temporary folder
/// written as `DIR`.
fn error_text(result: Result<ImportSummary>, dir: &Path) -> String {
    match result {
        Ok(summary) => panic!("the import succeeded: {summary:?}"),
        Err(error) => error.to_string().replace(&dir.display().to_string(), "DIR"),
    }
}

fn point(account: &str, metric: &str, time: i64, value: u64) -> (String, String, i64, u64) {
    (account.to_string(), metric.to_string(), time, value)
}

#[test]
fn csv_rows_become_points_in_row_order() {
    // [IM5] [IM11] [IM14]
    let text = "time,account,followers,following\n\
                2019-02-13T10:00:00Z,adela_mae,10234,512\n\
                2019-02-13T10:00:00Z,bob,7,0\n";
    let (sink, result, _, _dir) = import_text("s.csv", text, opts());
    let summary = result.expect("a valid file");
    assert_eq!(
        sink.points(),
        vec![
            point("adela_mae", "followers", T0, 10234),
            point("adela_mae", "following", T0, 512),
            point("bob", "followers", T0, 7),
            point("bob", "following", T0, 0),
        ]
    );
    assert_eq!(
        summary,
        ImportSummary {
            files: 1,
            rows: 2,
            points: 4,
            skipped: 0,
            skipped_examples: vec![],
            other_shards: 0,
            bytes: text.len() as u64,
        }
    );
}

#[test]
fn files_with_more_metrics_than_an_account_entry_holds_inline() {
    // [IM5]: any number of metric columns. The resolver keeps the series
    // of the first four metric slots of an account inline and the others
    // apart; both must give each account and metric its own series, over
    // several rows of the same accounts.
    let metrics = ["m0", "m1", "m2", "m3", "m4", "m5", "m6"];
    let mut text = format!("time,account,{}\n", metrics.join(","));
    let mut want = Vec::new();
    for (time, t) in [(T0, "2019-02-13T10:00:00Z"), (T1, "2019-02-13T11:00:00Z")] {
        for (a, account) in ["ann", "bo", "cy"].into_iter().enumerate() {
            let counts: Vec<u64> = (0..metrics.len() as u64)
                .map(|m| 1000 * a as u64 + 10 * m + (time - T0) as u64 / 3_600_000)
                .collect();
            let cells: Vec<String> = counts.iter().map(u64::to_string).collect();
            text.push_str(&format!("{t},{account},{}\n", cells.join(",")));
            for (metric, count) in metrics.iter().zip(counts) {
                want.push(point(account, metric, time, count));
            }
        }
    }
    let (sink, result, _, _dir) = import_text("s.csv", text, opts());
    result.expect("a valid file");
    assert_eq!(sink.points(), want);
}

#[test]
fn csv_columns_come_in_any_order() {
    // [IM5]
    let text = "following,account,followers,time\n512,adela_mae,10234,1550052000\n";
    let (sink, result, _, _dir) = import_text("s.csv", text, opts());
    result.expect("a valid file");
    assert_eq!(
        sink.points(),
        vec![
            point("adela_mae", "following", T0, 512),
            point("adela_mae", "followers", T0, 10234)
        ]
    );
}

#[test]
fn csv_quoting_keeps_commas_quotes_newlines_and_unicode_in_accounts() {
    // [IM5] [IM9]
    let text = "time,account,followers\n\
                1550052000,\"a,b\",1\n\
                1550052000,\"say \"\"hi\"\"\",2\n\
                1550052000,\"two\nlines\",3\n\
                1550052000,日本語 ✓ ünï,4\n\
                1550052000,\"\",5\n";
    let (sink, result, path, dir) = import_text("s.csv", text, opts());
    // The empty quoted account is on line 7, after a record of two lines.
    assert_eq!(
        error_text(result, dir.path()),
        "DIR/s.csv:7: the account is empty"
    );
    drop(path);
    let accounts: Vec<_> = sink.points().into_iter().map(|p| p.0).collect();
    assert_eq!(
        accounts,
        vec!["a,b", "say \"hi\"", "two\nlines", "日本語 ✓ ünï"]
    );
}

#[test]
fn csv_ignores_a_bom_and_crlf_line_ends() {
    // [IM4]
    let text = "\u{feff}time,account,followers\r\n1550052000,ann,1\r\n1550052000,\"bo\r\nb\",2\r\n1550052000,cy,x\r\n";
    let (sink, result, _, dir) = import_text("s.csv", text, opts());
    assert_eq!(
        error_text(result, dir.path()),
        "DIR/s.csv:5: count \"x\" in column followers is not a whole number"
    );
    assert_eq!(
        sink.points(),
        vec![
            point("ann", "followers", T0, 1),
            point("bo\r\nb", "followers", T0, 2)
        ]
    );
}

#[test]
fn csv_lines_count_blank_lines_and_records_over_several_lines() {
    // [IM4] [IM5] [IM12]
    let text = "\n\ntime,account,followers\n\n1550052000,\"a\n\nb\",1\n\n\n1550052000,c,-1";
    let (sink, result, _, dir) = import_text("s.csv", text, opts());
    assert_eq!(
        error_text(result, dir.path()),
        "DIR/s.csv:10: count \"-1\" in column followers is negative"
    );
    assert_eq!(sink.points(), vec![point("a\n\nb", "followers", T0, 1)]);

    // A line of just "" is blank too.
    let (sink, result, _, _dir) = import_text(
        "s.csv",
        "time,account,x\n\"\"\n1550052000,a,1\n\"\"\r\n",
        opts(),
    );
    assert_eq!(result.expect("blank lines").rows, 1);
    assert_eq!(sink.points(), vec![point("a", "x", T0, 1)]);

    // The header's line is the first that is not blank.
    let (_, result, _, dir) = import_text("s.csv", "\n\r\ntime,account\n", opts());
    assert_eq!(
        error_text(result, dir.path()),
        "DIR/s.csv:3: the header has no metric column (a column besides time and account)"
    );
}

#[test]
fn csv_empty_cells_add_no_point() {
    // [IM5] [IM8]
    let text = "time,account,a,b,c\n1550052000,ann,,2,\n1550052000,bob,,,\n";
    let (sink, result, _, _dir) = import_text("s.csv", text, opts());
    let summary = result.expect("a valid file");
    assert_eq!(sink.points(), vec![point("ann", "b", T0, 2)]);
    assert_eq!((summary.rows, summary.points), (2, 1));
}

#[test]
fn at_gives_the_time_of_files_without_one() {
    // [IM10]
    let at = ImportOptions {
        at: Some(T1),
        ..opts()
    };
    let (sink, result, _, _dir) = import_text("s.csv", "account,followers\nann,5\n", at);
    result.expect("a file without time, with --at");
    assert_eq!(sink.points(), vec![point("ann", "followers", T1, 5)]);

    let (sink, result, _, _dir) = import_text(
        "s.jsonl",
        "{\"account\":\"ann\",\"followers\":5,\"time\":null}\n",
        at,
    );
    result.expect("a line without time, with --at");
    assert_eq!(sink.points(), vec![point("ann", "followers", T1, 5)]);

    let (_, result, _, dir) = import_text("s.csv", "time,account,followers\n1,ann,5\n", at);
    assert_eq!(
        error_text(result, dir.path()),
        "DIR/s.csv:1: the header has a time column, but --at was given"
    );
    let (_, result, _, dir) = import_text("s.jsonl", "{\"account\":\"ann\",\"time\":1}\n", at);
    assert_eq!(
        error_text(result, dir.path()),
        "DIR/s.jsonl:1: the line has a time, but --at was given"
    );
    let (_, result, _, dir) = import_text("s.csv", "account,followers\nann,5\n", opts());
    assert_eq!(
        error_text(result, dir.path()),
        "DIR/s.csv:1: the header has no time column; give --at to import the file at one time"
    );

    let mut sink = VecSink::default();
    let out_of_range = ImportOptions {
        at: Some(i64::MAX),
        ..opts()
    };
    assert!(matches!(
        import(&mut sink, &[Path::new("unused.csv")], out_of_range),
        Err(Error::Invalid(_))
    ));
}

#[test]
fn later_rows_and_files_come_later_so_they_win() {
    // [IM11]
    let dir = temp_dir();
    let first = write(
        dir.path(),
        "1.csv",
        "time,account,followers\n1550052000,ann,1\n1550052000,ann,2\n",
    );
    let second = write(
        dir.path(),
        "2.jsonl",
        "{\"time\":1550052000,\"account\":\"ann\",\"followers\":3}\n",
    );
    let mut sink = VecSink::default();
    let summary = import(&mut sink, &[&second, &first], opts()).expect("valid files");
    assert_eq!(summary.files, 2);
    // Files in the order given, rows in file order.
    let values: Vec<u64> = sink.points().into_iter().map(|p| p.3).collect();
    assert_eq!(values, vec![3, 1, 2]);
    assert_eq!(sink.final_points(), vec![point("ann", "followers", T0, 2)]);
}

#[test]
fn gzip_files_and_multi_member_streams_are_decompressed() {
    // [IM3]
    let dir = temp_dir();
    let mut two_members = gzip(b"time,account,followers\n1550052000,ann,1\n");
    two_members.extend(gzip(b"1550052000,bob,2\n1550052000,cy,z\n"));
    let path = write(dir.path(), "s.csv.gz", &two_members);
    let mut sink = VecSink::default();
    let result = import(&mut sink, &[&path], opts());
    // Lines run on across members.
    assert_eq!(
        error_text(result, dir.path()),
        "DIR/s.csv.gz:4: count \"z\" in column followers is not a whole number"
    );
    assert_eq!(
        sink.points(),
        vec![
            point("ann", "followers", T0, 1),
            point("bob", "followers", T0, 2)
        ]
    );

    let path = write(
        dir.path(),
        "s.ndjson.GZ",
        gzip(b"{\"time\":1550052000,\"account\":\"ann\",\"x\":1}\n"),
    );
    let mut sink = VecSink::default();
    let summary = import(&mut sink, &[&path], opts()).expect("a valid file");
    assert_eq!(
        summary.bytes,
        std::fs::metadata(&path).expect("the file").len()
    );
    assert_eq!(sink.points(), vec![point("ann", "x", T0, 1)]);
}

#[test]
fn broken_gzip_is_an_error_at_the_line_reached() {
    // [IM3] [IM12]
    let dir = temp_dir();
    let mut text = String::from("time,account,followers\n");
    for i in 0..20_000 {
        text.push_str(&format!("1550052000,account_{i},{}\n", i * 7919 % 10007));
    }
    let compressed = gzip(text.as_bytes());

    let truncated = write(dir.path(), "t.csv.gz", &compressed[..compressed.len() / 2]);
    let mut sink = VecSink::default();
    let error = import(&mut sink, &[&truncated], opts()).expect_err("a truncated file");
    let Error::Import { line, reason, .. } = error else {
        panic!("not an import error: {error}");
    };
    assert!(line > 1 && line < 20_002, "line {line}");
    assert_eq!(
        reason,
        "the gzip data ends early; the file is truncated (incomplete deflate stream)"
    );
    // The rows before the break were pushed; the caller rolls them back.
    assert!(!sink.pushes.is_empty());

    // A second member cut after its header: the error is on the line after
    // the first member's text.
    let mut cut = gzip(b"time,account,x\n1550052000,a,1\n1550052000,b,2\n");
    cut.extend_from_slice(&gzip(b"1550052000,c,3\n")[..12]);
    let cut = write(dir.path(), "c.csv.gz", cut);
    let mut sink = VecSink::default();
    assert_eq!(
        error_text(import(&mut sink, &[&cut], opts()), dir.path()),
        "DIR/c.csv.gz:4: the gzip data ends early; the file is truncated (incomplete deflate stream)"
    );
    // The rows before the break were pushed first.
    assert_eq!(sink.pushes.len(), 2);

    // A bad row before the break is reported, not the break.
    let mut bad_then_cut = gzip(b"time,account,x\n1550052000,a,-1\n");
    bad_then_cut.extend_from_slice(&gzip(b"1550052000,c,3\n")[..12]);
    let bad_then_cut = write(dir.path(), "d.csv.gz", bad_then_cut);
    assert_eq!(
        error_text(import(&mut sink, &[&bad_then_cut], opts()), dir.path()),
        "DIR/d.csv.gz:2: count \"-1\" in column x is negative"
    );

    let not_gzip = write(dir.path(), "n.csv.gz", "time,account,followers\n");
    let mut sink = VecSink::default();
    assert_eq!(
        error_text(import(&mut sink, &[&not_gzip], opts()), dir.path()),
        "DIR/n.csv.gz:0: the gzip data is broken (invalid gzip header)"
    );
    let empty = write(dir.path(), "e.jsonl.gz", "");
    assert_eq!(
        error_text(import(&mut sink, &[&empty], opts()), dir.path()),
        "DIR/e.jsonl.gz:0: the gzip data ends early; the file is truncated (unexpected end of file)"
    );
    let mut trailing = gzip(b"time,account,x\n1550052000,a,1\n");
    trailing.extend_from_slice(&[0; 10]);
    let trailing = write(dir.path(), "g.csv.gz", trailing);
    assert_eq!(
        error_text(import(&mut sink, &[&trailing], opts()), dir.path()),
        "DIR/g.csv.gz:3: the gzip data is broken (invalid gzip header)"
    );
}

#[test]
fn folders_import_their_snapshot_files_in_byte_order_of_name() {
    // [IM1] [IM2]
    let dir = temp_dir();
    let folder = dir.path().join("snaps");
    std::fs::create_dir_all(folder.join("sub.csv")).expect("folders");
    let row = |value: u32| format!("time,account,x\n1550052000,ann,{value}\n");
    write(&folder, "b.csv", row(3));
    write(
        &folder,
        "a.jsonl",
        "{\"time\":1550052000,\"account\":\"ann\",\"x\":2}\n",
    );
    write(&folder, "A.CSV", row(1));
    write(&folder, "c.csv.gz", gzip(row(4).as_bytes()));
    write(
        &folder,
        "d.NDJSON",
        "{\"time\":1550052000,\"account\":\"ann\",\"x\":5}\n",
    );
    write(&folder, "notes.txt", "not a snapshot");
    write(&folder, "e.json", "not a snapshot either");
    write(&folder.join("sub.csv"), "z.csv", row(99));
    let mut sink = VecSink::default();
    let summary = import(&mut sink, &[&folder], opts()).expect("a valid folder");
    let values: Vec<u64> = sink.points().into_iter().map(|p| p.3).collect();
    assert_eq!(values, vec![1, 2, 3, 4, 5]);
    assert_eq!(summary.files, 5);

    // Errors name the file inside the folder as the folder was given.
    write(&folder, "b.csv", "time,account,x\n1550052000,ann,-3\n");
    let mut sink = VecSink::default();
    assert_eq!(
        error_text(import(&mut sink, &[&folder], opts()), dir.path()),
        "DIR/snaps/b.csv:2: count \"-3\" in column x is negative"
    );

    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).expect("a folder");
    write(&empty, "readme.md", "");
    assert_eq!(
        error_text(import(&mut sink, &[&empty], opts()), dir.path()),
        "DIR/empty:0: the folder has no snapshot files (.csv, .jsonl or .ndjson, optionally followed by .gz)"
    );
}

#[test]
fn format_comes_from_the_name_unless_given() {
    // [IM2]
    for format in [Format::Csv, Format::Jsonl] {
        assert_eq!(format.name().parse::<Format>().ok(), Some(format));
    }
    assert!("json".parse::<Format>().is_err());

    let dir = temp_dir();
    let path = write(dir.path(), "s.txt", "time,account,x\n1550052000,ann,1\n");
    let mut sink = VecSink::default();
    assert_eq!(
        error_text(import(&mut sink, &[&path], opts()), dir.path()),
        "DIR/s.txt:0: cannot tell the format from the file name: expected .csv, .jsonl or .ndjson (optionally followed by .gz), or give --format"
    );
    let csv = ImportOptions {
        format: Some(Format::Csv),
        ..opts()
    };
    import(&mut sink, &[&path], csv).expect("--format csv");
    assert_eq!(sink.points(), vec![point("ann", "x", T0, 1)]);

    // --format applies to a file whatever its extension.
    let jsonl = write(
        dir.path(),
        "s.csv",
        "{\"time\":1550052000,\"account\":\"bob\",\"x\":2}\n",
    );
    let as_jsonl = ImportOptions {
        format: Some(Format::Jsonl),
        ..opts()
    };
    let mut sink = VecSink::default();
    import(&mut sink, &[&jsonl], as_jsonl).expect("--format jsonl");
    assert_eq!(sink.points(), vec![point("bob", "x", T0, 2)]);
}

#[test]
fn missing_files_fail_before_anything_is_read() {
    // [IM1] [IM12]
    let dir = temp_dir();
    let good = write(dir.path(), "good.csv", "time,account,x\n1550052000,ann,1\n");
    let missing = dir.path().join("missing.csv");
    let mut sink = VecSink::default();
    assert_eq!(
        error_text(import(&mut sink, &[&good, &missing], opts()), dir.path()),
        "DIR/missing.csv:0: no such file or folder"
    );
    assert!(sink.pushes.is_empty() && sink.accounts.is_empty());
}

#[test]
fn stdin_is_sniffed_for_gzip_and_format() {
    // [IM1] [IM2] [IM3]
    let stdin = [Input::from_arg("-")];
    assert_eq!(stdin[0], Input::Stdin);

    let mut sink = VecSink::default();
    import_stdin(
        &mut sink,
        &stdin,
        opts(),
        b"time,account,x\n1550052000,ann,1\n",
    )
    .expect("CSV");
    assert_eq!(sink.points(), vec![point("ann", "x", T0, 1)]);

    let mut sink = VecSink::default();
    let jsonl = b"\n  \n{\"time\":1550052000,\"account\":\"ann\",\"x\":1}\n{\"time\":1550052000,\"account\":\"bob\",\"x\":true}\n";
    let result = import_stdin(&mut sink, &stdin, opts(), jsonl);
    assert_eq!(
        result.expect_err("a bad line").to_string(),
        "-:4: count for key \"x\" is a boolean, not a number"
    );
    assert_eq!(sink.points(), vec![point("ann", "x", T0, 1)]);

    let mut sink = VecSink::default();
    let compressed = gzip(b"\xef\xbb\xbf{\"time\":1550052000,\"account\":\"ann\",\"x\":1}\n");
    import_stdin(&mut sink, &stdin, opts(), &compressed).expect("gzip JSON lines");
    assert_eq!(sink.points(), vec![point("ann", "x", T0, 1)]);

    // --format overrides the sniffing.
    let mut sink = VecSink::default();
    let csv = ImportOptions {
        format: Some(Format::Csv),
        ..opts()
    };
    let result = import_stdin(&mut sink, &stdin, csv, b"{\"a\":1}\n");
    assert_eq!(
        result.expect_err("JSON read as CSV").to_string(),
        "-:1: the header has no account column"
    );

    let mut sink = VecSink::default();
    let result = import_stdin(&mut sink, &[Input::Stdin, Input::Stdin], opts(), b"");
    assert!(matches!(result, Err(Error::Invalid(_))));

    // Empty standard input is an empty CSV file.
    let result = import_stdin(&mut sink, &stdin, opts(), b"");
    assert_eq!(
        result.expect_err("no header").to_string(),
        "-:0: the file has no header row (it is empty or blank)"
    );
}

#[test]
fn jsonl_keys_come_in_any_order_with_string_or_integer_times() {
    // [IM6] [IM7]
    let text = "{\"followers\": 10234, \"account\": \"adela_mae\", \"time\": \"2019-02-13T15:30:00+05:30\"}\n\
                \n\
                {\"time\": 1550055600, \"following\": 3, \"account\": \"bob\", \"followers\": null}\r\n\
                   \t \n\
                {\"account\": \"c\\u00e9\", \"time\": \"2019-02-13T10:00:00.250Z\"}\n\
                {\"account\":\"d\",\"time\":-1,\"x\":0}";
    let (sink, result, _, _dir) = import_text("s.jsonl", text, opts());
    let summary = result.expect("valid lines");
    assert_eq!(
        sink.points(),
        vec![
            point("adela_mae", "followers", T0, 10234),
            point("bob", "following", T1, 3),
            point("d", "x", -1000, 0),
        ]
    );
    assert_eq!((summary.rows, summary.points), (4, 3));
    assert_eq!(sink.accounts, vec!["adela_mae", "bob", "cé", "d"]);
}

/// Imports `line` as the third line of a JSON lines file whose first two
/// lines are good, and returns the error.
fn jsonl_error(line: &str, opts: ImportOptions) -> String {
    let good = "{\"time\":1550052000,\"account\":\"ann\",\"x\":1}\n";
    let (sink, result, _, dir) = import_text("s.jsonl", format!("{good}\n{line}\n{good}"), opts);
    assert_eq!(
        sink.pushes.len(),
        1,
        "the first line is imported before the error"
    );
    error_text(result, dir.path())
}

#[test]
fn jsonl_bad_lines_are_rejected_with_their_reason() {
    // [IM6] [IM7] [IM8] [IM9] [IM12]
    let cases: &[(&str, &str)] = &[
        (
            r#"{"time":1550052000,"account":"a","x":1.5}"#,
            "count 1.5 for key \"x\" is not a whole number",
        ),
        (
            r#"{"time":1550052000,"account":"a","x":1.0}"#,
            "count 1.0 for key \"x\" is not written as an integer",
        ),
        (
            r#"{"time":1550052000,"account":"a","x":1e3}"#,
            "count 1000.0 for key \"x\" is not written as an integer",
        ),
        (
            r#"{"time":1550052000,"account":"a","x":"12"}"#,
            "count \"12\" for key \"x\" is a string, not a number",
        ),
        (
            r#"{"time":1550052000,"account":"a","x":{"n":1}}"#,
            "count for key \"x\" is an object, not a number",
        ),
        (
            r#"{"time":1550052000,"account":"a","x":[1]}"#,
            "count for key \"x\" is an array, not a number",
        ),
        (
            r#"{"time":1550052000,"account":"a","x":-5}"#,
            "count -5 for key \"x\" is negative",
        ),
        (
            r#"{"time":1550052000,"account":"a","x":9223372036854775808}"#,
            "count 9223372036854775808 for key \"x\" is larger than the largest count, 9223372036854775807",
        ),
        (
            r#"{"time":1550052000,"account":"a","x":99999999999999999999}"#,
            "count 1e20 for key \"x\" is larger than the largest count, 9223372036854775807",
        ),
        (
            r#"{"time":1550052000,"account":"a","x":-99999999999999999999}"#,
            "count -1e20 for key \"x\" is negative",
        ),
        (
            r#"{"time":"yesterday","account":"a","x":1}"#,
            "time \"yesterday\" is neither RFC 3339 (like 2019-02-13T10:00:00Z) nor Unix seconds",
        ),
        (
            r#"{"time":"2019-02-13T10:00:00","account":"a","x":1}"#,
            "time \"2019-02-13T10:00:00\" is neither RFC 3339 (like 2019-02-13T10:00:00Z) nor Unix seconds",
        ),
        (
            r#"{"time":1550052000.5,"account":"a","x":1}"#,
            "time 1550052000.5 is not a whole number of Unix seconds",
        ),
        (
            r#"{"time":true,"account":"a","x":1}"#,
            "the time is a boolean, not a string or an integer",
        ),
        (
            r#"{"time":99999999999999,"account":"a","x":1}"#,
            "99999999999999 Unix seconds is outside the years 0000 to 9999",
        ),
        (
            r#"{"time":18446744073709551615,"account":"a","x":1}"#,
            "18446744073709551615 Unix seconds is outside the years 0000 to 9999",
        ),
        (r#"{"account":"a","x":1}"#, "the time is missing"),
        (
            r#"{"time":null,"account":"a","x":1}"#,
            "the time is missing",
        ),
        (r#"{"time":1550052000,"x":1}"#, "the account is missing"),
        (
            r#"{"time":1550052000,"account":"","x":1}"#,
            "the account is empty",
        ),
        (
            r#"{"time":1550052000,"account":7,"x":1}"#,
            "the account is a number, not a string",
        ),
        (
            r#"{"time":1550052000,"account":"a","x":1,"x":2}"#,
            "key \"x\" appears twice",
        ),
        (
            r#"{"time":1550052000,"account":"a","bad name":1}"#,
            "metric name \"bad name\" is not valid: it must match [A-Za-z_][A-Za-z0-9_]* and be at most 255 bytes",
        ),
        (
            r#"{"time":1550052000,"account":"a","bad name":null}"#,
            "metric name \"bad name\" is not valid: it must match [A-Za-z_][A-Za-z0-9_]* and be at most 255 bytes",
        ),
        (
            r#"{"time":1550052000,"account":"a","x":1"#,
            "invalid JSON at the end of the line: EOF while parsing an object",
        ),
        (
            r#"{"time":1550052000,"account":"a","x":01}"#,
            "invalid JSON at column 39: invalid number",
        ),
        (
            r#"{"time":1550052000,"account":"a"} {}"#,
            "invalid JSON at column 35: trailing characters",
        ),
        (r#"["time",1550052000]"#, "the line is not a JSON object"),
        ("42", "the line is not a JSON object"),
        ("time,account,x", "the line is not a JSON object"),
    ];
    for (line, reason) in cases {
        assert_eq!(
            jsonl_error(line, opts()),
            format!("DIR/s.jsonl:3: {reason}"),
            "{line}"
        );
    }
    // A string with invalid UTF-8 is caught before JSON is parsed.
    let (_, result, _, dir) =
        import_text("s.jsonl", b"{\"time\":1,\"account\":\"\xff\"}\n", opts());
    assert_eq!(
        error_text(result, dir.path()),
        "DIR/s.jsonl:1: the line is not valid UTF-8"
    );
}

#[test]
fn jsonl_lines_without_metrics_are_rows_without_points() {
    // [IM6]
    let (sink, result, _, _dir) = import_text(
        "s.jsonl",
        "{\"time\":1550052000,\"account\":\"ann\",\"x\":null}\n",
        opts(),
    );
    let summary = result.expect("a valid line");
    assert_eq!((summary.rows, summary.points), (1, 0));
    // The account and metric are defined, as for a CSV row of empty cells.
    assert_eq!((sink.accounts.len(), sink.metrics.len()), (1, 1));
}

/// Imports `row` as the third line of a CSV file whose first rows are good,
/// and returns the error.
fn csv_error(header: &str, row: impl AsRef<[u8]>) -> String {
    let mut text = format!("{header}\n1550052000,ann,1,2\n").into_bytes();
    text.extend_from_slice(row.as_ref());
    text.extend_from_slice(b"\n1550052000,ann,1,2\n");
    let (sink, result, _, dir) = import_text("s.csv", text, opts());
    assert_eq!(
        sink.pushes.len(),
        2,
        "the first row is imported before the error"
    );
    error_text(result, dir.path())
}

#[test]
fn csv_bad_rows_are_rejected_with_their_reason() {
    // [IM5] [IM7] [IM8] [IM9] [IM12]
    let header = "time,account,followers,following";
    let cases: &[(&[u8], &str)] = &[
        (
            b"1550052000,a,12a,1",
            "count \"12a\" in column followers is not a whole number",
        ),
        (
            b"1550052000,a,1,1.5",
            "count \"1.5\" in column following is not a whole number",
        ),
        (
            b"1550052000,a,1, 2",
            "count \" 2\" in column following is not a whole number",
        ),
        (
            b"1550052000,a,-5,1",
            "count \"-5\" in column followers is negative",
        ),
        (
            b"1550052000,a,9223372036854775808,1",
            "count \"9223372036854775808\" in column followers is larger than the largest count, 9223372036854775807",
        ),
        (
            b"1550052000,a,1,\xff",
            "count \"\u{fffd}\" in column following is not a whole number",
        ),
        (
            b"yesterday,a,1,1",
            "time \"yesterday\" is neither RFC 3339 (like 2019-02-13T10:00:00Z) nor Unix seconds",
        ),
        (b",a,1,1", "the time is empty"),
        (b"\xff,a,1,1", "time \"\u{fffd}\" is not valid UTF-8"),
        (
            b"99999999999999,a,1,1",
            "99999999999999 Unix seconds is outside the years 0000 to 9999",
        ),
        (b"1550052000,,1,1", "the account is empty"),
        (b"1550052000,\xffa,1,1", "the account is not valid UTF-8"),
        (
            b"1550052000,a,1",
            "the row has 3 fields, but the header has 4",
        ),
        (
            b"1550052000,a,1,1,",
            "the row has 5 fields, but the header has 4",
        ),
        (b"x", "the row has 1 field, but the header has 4"),
        // Several problems: fields, time, empty account, counts, then the
        // account's encoding ([IM12]).
        (
            b"yesterday,,-1,1",
            "time \"yesterday\" is neither RFC 3339 (like 2019-02-13T10:00:00Z) nor Unix seconds",
        ),
        (b"1550052000,,-1,1", "the account is empty"),
        (
            b"1550052000,\xff,1,-1",
            "count \"-1\" in column following is negative",
        ),
    ];
    for (row, reason) in cases {
        assert_eq!(
            csv_error(header, row),
            format!("DIR/s.csv:3: {reason}"),
            "{}",
            String::from_utf8_lossy(row)
        );
    }
    let long = format!("1550052000,{},1,1", "a".repeat(4097));
    assert_eq!(
        csv_error(header, long),
        "DIR/s.csv:3: the account is 4097 bytes long; the longest allowed is 4096"
    );
}

#[test]
fn csv_an_unclosed_quote_is_reported_where_it_opens() {
    // [IM5] [IM12]
    let skip = ImportOptions {
        skip_bad: true,
        ..opts()
    };
    // Never closed: the rest of the file is lost, so this fails the file.
    let text = "time,account,x\n1550052000,ann,1\n1550052000,\"bob,2\n1550052000,cy,3\n";
    let (_, result, _, dir) = import_text("s.csv", text, skip);
    assert_eq!(
        error_text(result, dir.path()),
        "DIR/s.csv:3: a quoted field in this row is never closed"
    );
    let (_, result, _, dir) = import_text("s.csv", "time,account,\"x\n", skip);
    assert_eq!(
        error_text(result, dir.path()),
        "DIR/s.csv:1: a quoted field in this row is never closed"
    );
    // Closed by a later quote: the row swallowed lines.
    let text = "time,account,x\n1550052000,\"bob\n1550052000,cy\",3,4\n1550052000,dan,4\n";
    let (sink, result, _, dir) = import_text("s.csv", text, opts());
    assert_eq!(
        error_text(result, dir.path()),
        "DIR/s.csv:2: the row has 4 fields, but the header has 3 (a quoted field spans lines; is a quote not closed?)"
    );
    assert!(sink.pushes.is_empty());
}

#[test]
fn csv_bad_headers_fail_the_file() {
    // [IM5] [IM12] [IM15]
    let cases: &[(&[u8], &str)] = &[
        (
            b"time,account,x,x",
            "1: column \"x\" appears twice in the header",
        ),
        (
            b"time,account,time,x",
            "1: column \"time\" appears twice in the header",
        ),
        (b"time,acct,x", "1: the header has no account column"),
        (
            b"time,account",
            "1: the header has no metric column (a column besides time and account)",
        ),
        (
            b"time,account,followers count",
            "1: metric name \"followers count\" is not valid: it must match [A-Za-z_][A-Za-z0-9_]* and be at most 255 bytes",
        ),
        (
            b"time,account,x,",
            "1: metric name \"\" is not valid: it must match [A-Za-z_][A-Za-z0-9_]* and be at most 255 bytes",
        ),
        (b"time,account,\xff", "1: the header is not valid UTF-8"),
        (b"", "0: the file has no header row (it is empty or blank)"),
        (
            b"\n\r\n\n",
            "0: the file has no header row (it is empty or blank)",
        ),
    ];
    let skip = ImportOptions {
        skip_bad: true,
        ..opts()
    };
    for (header, expected) in cases {
        let mut text = header.to_vec();
        text.extend_from_slice(b"\n");
        let (_, result, _, dir) = import_text("s.csv", text, skip);
        assert_eq!(
            error_text(result, dir.path()),
            format!("DIR/s.csv:{expected}")
        );
    }
}

#[test]
fn skip_bad_skips_and_counts_bad_rows_and_reports_the_first_ten() {
    // [IM13]
    let mut text = String::from("time,account,x\n");
    for i in 0..30 {
        if i % 2 == 1 {
            text.push_str(&format!("1550052000,bad{i},oops{i}\n"));
        } else {
            text.push_str(&format!("1550052000,good{i},{i}\n"));
        }
    }
    let skip = ImportOptions {
        skip_bad: true,
        ..opts()
    };
    let (sink, result, _, dir) = import_text("s.csv", text, skip);
    let summary = result.expect("bad rows skipped");
    assert_eq!(
        (summary.rows, summary.points, summary.skipped),
        (15, 15, 15)
    );
    let examples: Vec<String> = summary
        .skipped_examples
        .iter()
        .map(|e| e.replace(&dir.path().display().to_string(), "DIR"))
        .collect();
    let expected: Vec<String> = (0..MAX_SKIPPED_EXAMPLES)
        .map(|k| {
            let i = 2 * k + 1;
            format!(
                "DIR/s.csv:{}: count \"oops{i}\" in column x is not a whole number",
                i + 2
            )
        })
        .collect();
    assert_eq!(examples, expected);
    // A skipped row defines nothing: no account named bad*.
    assert!(sink.accounts.iter().all(|a| a.starts_with("good")));

    // JSON lines too, including a row the sink rejects.
    let text = "{\"time\":1550052000,\"account\":\"a\",\"bad-name\":1}\n{\"time\":1550052000,\"account\":\"b\",\"x\":1}\n";
    let (sink, result, _, _dir) = import_text("s.jsonl", text, skip);
    let summary = result.expect("bad rows skipped");
    assert_eq!((summary.rows, summary.skipped), (1, 1));
    assert_eq!(sink.accounts, vec!["b"]);
}

#[test]
fn skip_bad_still_fails_on_file_errors() {
    // [IM13]
    let skip = ImportOptions {
        skip_bad: true,
        ..opts()
    };
    let dir = temp_dir();
    let missing = dir.path().join("missing.csv");
    let mut sink = VecSink::default();
    assert!(import(&mut sink, &[&missing], skip).is_err());
    let mut compressed = gzip(b"time,account,x\n1550052000,a,1\n");
    compressed.truncate(compressed.len() - 3);
    let broken = write(dir.path(), "b.csv.gz", compressed);
    assert!(import(&mut sink, &[&broken], skip).is_err());
    let bad_header = write(dir.path(), "h.csv", "time,x\n1550052000,1\n");
    assert!(import(&mut sink, &[&bad_header], skip).is_err());
}

#[test]
fn progress_reports_bytes_of_the_known_total_and_rows() {
    // [IM14]
    let dir = temp_dir();
    let a = write(
        dir.path(),
        "a.csv",
        "time,account,x\n1550052000,ann,1\n1550052000,bob,2\n",
    );
    let b = write(
        dir.path(),
        "b.jsonl",
        "{\"time\":1550052000,\"account\":\"ann\",\"x\":1}\n",
    );
    let total = std::fs::metadata(&a).expect("a").len() + std::fs::metadata(&b).expect("b").len();
    let mut sink = VecSink::default();
    let mut calls = Vec::new();
    let inputs = [Input::Path(a), Input::Path(b)];
    let summary =
        import_into(&mut sink, &inputs, &opts(), &mut |p| calls.push(p)).expect("valid files");
    assert_eq!(summary.bytes, total);
    assert_eq!(
        calls.last(),
        Some(&Progress {
            bytes: total,
            total_bytes: Some(total),
            rows: 3,
            files: 2,
        })
    );

    let mut calls = Vec::new();
    let stdin = b"time,account,x\n1550052000,ann,1\n".to_vec();
    let length = stdin.len() as u64;
    import_with_stdin(
        &mut sink,
        &[Input::Stdin],
        &opts(),
        &mut |p| calls.push(p),
        move || Box::new(std::io::Cursor::new(stdin)),
    )
    .expect("valid input");
    assert_eq!(
        calls.last(),
        Some(&Progress {
            bytes: length,
            total_bytes: None,
            rows: 1,
            files: 1,
        })
    );
}

/// A small deterministic generator, so that the account-cache test covers
/// many shapes of change without a dependency.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[test]
fn accounts_are_looked_up_once_per_broken_order_however_files_reorder_them() {
    // [IM11]: the account cache must never change what is pushed.
    let dir = temp_dir();
    let mut rng = 7;
    let mut accounts: Vec<String> = (0..300).map(|i| format!("acct{i}")).collect();
    let mut expected = Vec::new();
    let mut paths = Vec::new();
    for file in 0..8 {
        // Each file drops, adds, swaps and repeats some accounts.
        for _ in 0..10 {
            let at = (splitmix64(&mut rng) % accounts.len() as u64) as usize;
            match splitmix64(&mut rng) % 4 {
                0 => {
                    accounts.remove(at);
                }
                1 => accounts.insert(at, format!("new{file}_{at}")),
                2 => {
                    let other = (splitmix64(&mut rng) % accounts.len() as u64) as usize;
                    accounts.swap(at, other);
                }
                _ => {
                    let repeated = accounts[at].clone();
                    accounts.insert(at, repeated);
                }
            }
        }
        let time = 1_550_052_000 + 3600 * file as i64;
        let mut text = String::from("time,account,a,b,c,d,e,f\n");
        for (row, account) in accounts.iter().enumerate() {
            text.push_str(&format!("{time},{account},{row},,{file},1,2,3\n"));
            for (metric, value) in [("a", row), ("c", file), ("d", 1), ("e", 2), ("f", 3)] {
                expected.push(point(account, metric, time * 1000, value as u64));
            }
        }
        paths.push(write(dir.path(), &format!("{file}.csv"), text));
    }
    let mut sink = VecSink::default();
    let refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
    import(&mut sink, &refs, opts()).expect("valid files");
    assert_eq!(sink.points(), expected);
    // The sink names an account's id when the guess of the next account
    // fails: every account of the first file, then at most the few whose
    // predecessor changed. Each of a later file's 10 edits breaks at most
    // four successor links (a swap), so the sink sees no more calls than
    // the distinct accounts and those.
    let distinct = sink.accounts.len();
    assert!(
        sink.account_calls >= distinct && sink.account_calls <= distinct + 7 * 10 * 4,
        "{} calls for {distinct} accounts",
        sink.account_calls
    );
    assert_eq!(
        sink.series_calls,
        sink.series.len(),
        "one call per distinct series"
    );
}

/// A sink whose ids count down from u32::MAX, to check that no id is
/// mistaken for a marker of the importer's caches.
#[derive(Default)]
struct CountdownSink(VecSink);

impl SnapshotSink for CountdownSink {
    fn metric_id(&mut self, name: &str) -> Result<u32> {
        Ok(!self.0.metric_id(name)?)
    }
    fn account_id(&mut self, name: &str) -> Result<u32> {
        Ok(!self.0.account_id(name)?)
    }
    fn series_id(&mut self, account: u32, metric: u32) -> Result<u32> {
        Ok(!self.0.series_id(!account, !metric)?)
    }
    fn push(&mut self, series: u32, time_ms: i64, value: u64) -> Result<()> {
        self.0.push(!series, time_ms, value)
    }
}

#[test]
fn any_id_the_sink_gives_is_used_as_given() {
    // [IM11]
    let dir = temp_dir();
    let path = write(
        dir.path(),
        "s.csv",
        "time,account,x,y\n1550052000,ann,1,2\n1550052000,ann,3,4\n",
    );
    let mut sink = CountdownSink::default();
    let inputs = [Input::Path(path)];
    import_into(&mut sink, &inputs, &opts(), &mut |_| {}).expect("a valid file");
    assert_eq!(
        sink.0.points(),
        vec![
            point("ann", "x", T0, 1),
            point("ann", "y", T0, 2),
            point("ann", "x", T0, 3),
            point("ann", "y", T0, 4),
        ]
    );
}

/// A stream of `head`, then `filler` repeated for `length` bytes, then
/// `tail`, made as it is read, so that a gigabyte of input costs no memory
/// here. It counts the bytes handed out, and fails a read past `budget`:
/// an import that buffers a whole line of it would read on, and this stops
/// it with an error the tests tell from the limit's.
struct Endless {
    head: Vec<u8>,
    filler: Vec<u8>,
    length: u64,
    tail: Vec<u8>,
    position: u64,
    budget: u64,
    handed_out: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Endless {
    fn new(head: &[u8], filler: &[u8], length: u64, tail: &[u8]) -> Endless {
        Endless {
            head: head.to_vec(),
            filler: filler.to_vec(),
            length,
            tail: tail.to_vec(),
            position: 0,
            budget: 64 << 20,
            handed_out: std::sync::Arc::default(),
        }
    }

    fn byte(&self, at: u64) -> Option<u8> {
        let head = self.head.len() as u64;
        if at < head {
            return self.head.get(at as usize).copied();
        }
        let at = at - head;
        if at < self.length {
            return self
                .filler
                .get((at % self.filler.len() as u64) as usize)
                .copied();
        }
        self.tail.get((at - self.length) as usize).copied()
    }
}

impl std::io::Read for Endless {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.position >= self.budget {
            return Err(std::io::Error::other(
                "the test's stream was read past its budget: the line is being buffered whole",
            ));
        }
        let mut n = 0;
        for slot in buf.iter_mut().take(64 * 1024) {
            let Some(byte) = self.byte(self.position) else {
                break;
            };
            *slot = byte;
            self.position += 1;
            n += 1;
        }
        self.handed_out
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

/// Imports `stream` as standard input in `format`.
fn import_stream(
    stream: impl std::io::Read + Send + 'static,
    format: Format,
    skip_bad: bool,
) -> (VecSink, Result<ImportSummary>) {
    let mut sink = VecSink::default();
    let opts = ImportOptions {
        format: Some(format),
        skip_bad,
        ..opts()
    };
    let result = import_with_stdin(&mut sink, &[Input::Stdin], &opts, &mut |_| {}, move || {
        Box::new(stream)
    });
    (sink, result)
}

const TOO_LONG: &str =
    "the line is longer than 1048576 bytes, the longest allowed (is a line end missing?)";

#[test]
fn a_gigabyte_line_without_an_end_fails_at_the_limit_having_read_little() {
    // [IM16] [IM12] [IM13]
    const GIGABYTE: u64 = 1 << 30;
    let cases: [(Format, &[u8], &[u8], u64); 4] = [
        // A row that never ends.
        (Format::Csv, b"time,account,x\n1550052000,ann,1\n", b"a", 3),
        // A quoted field that never closes, over endless short lines: one
        // record that spans lines, reported where it starts.
        (Format::Csv, b"time,account,x\n1550052000,\"", b"a\n", 2),
        // A header that never ends.
        (Format::Csv, b"time,account,", b"x", 1),
        (
            Format::Jsonl,
            b"{\"time\": 1550052000, \"account\": \"ann\", \"x\": 1}\n{\"account\": \"",
            b"a",
            2,
        ),
    ];
    for (format, head, filler, line) in cases {
        let stream = Endless::new(head, filler, GIGABYTE, b"\n");
        let handed_out = std::sync::Arc::clone(&stream.handed_out);
        let (_, result) = import_stream(stream, format, true);
        let name = String::from_utf8_lossy(head);
        assert_eq!(
            result.map_err(|e| e.to_string()).expect_err(&name),
            format!("-:{line}: {TOO_LONG}"),
            "{name}"
        );
        // The limit, plus what the reader may have buffered ahead.
        let read = handed_out.load(std::sync::atomic::Ordering::Relaxed);
        assert!(read <= 4 << 20, "{name}: {read} bytes were read");
    }
}

#[test]
fn a_line_of_exactly_the_limit_is_read_and_one_byte_more_is_not() {
    // [IM16]: the limit counts the bytes before the `\n`, the `\r` of a
    // `\r\n` included. A line at the limit is read as a row (here a bad
    // one: its account is too long), one byte longer fails the file.
    for format in [Format::Csv, Format::Jsonl] {
        for crlf in [false, true] {
            let (prefix, suffix): (&[u8], &[u8]) = match format {
                Format::Csv => (b"1550052000,", b",1"),
                Format::Jsonl => (b"{\"time\": 1550052000, \"x\": 1, \"account\": \"", b"\"}"),
            };
            let end: &[u8] = if crlf { b"\r\n" } else { b"\n" };
            let header: &[u8] = if format == Format::Csv {
                b"time,account,x\n"
            } else {
                b""
            };
            let first_line = if format == Format::Csv { 2 } else { 1 };
            let account_len =
                MAX_LINE_BYTES as u64 - (prefix.len() + suffix.len() + end.len() - 1) as u64;
            for extra in [0, 1] {
                let mut tail = suffix.to_vec();
                tail.extend_from_slice(end);
                let mut head = header.to_vec();
                head.extend_from_slice(prefix);
                let stream = Endless::new(&head, b"a", account_len + extra, &tail);
                let (_, result) = import_stream(stream, format, true);
                let label = format!("{format:?}, crlf {crlf}, {extra} over");
                if extra == 0 {
                    let summary = result.expect(&label);
                    assert_eq!(summary.skipped, 1, "{label}");
                    assert!(
                        summary.skipped_examples[0].starts_with(&format!(
                            "-:{first_line}: the account is {account_len} bytes long"
                        )),
                        "{label}: {:?}",
                        summary.skipped_examples
                    );
                } else {
                    assert_eq!(
                        result.map_err(|e| e.to_string()).expect_err(&label),
                        format!("-:{first_line}: {TOO_LONG}"),
                        "{label}"
                    );
                }
            }
        }
    }
}

/// One gzip member of `bytes`.
fn gzip_member(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).expect("compressing in memory");
    encoder.finish().expect("compressing in memory")
}

#[test]
fn a_gzip_bomb_of_one_line_inflates_only_to_the_line_limit() {
    // [IM16] [IM3]: 10 GiB of text without a line end, as 10,240 gzip
    // members of 1 MiB each (deflate inflates at most about 1032 times, so
    // that is about 10 MB of gzip, made here as it is read). The import
    // fails at the line limit having inflated a few MiB.
    let header = gzip_member(b"time,account,x\n1550052000,");
    let member = gzip_member(&vec![b'a'; 1 << 20]);
    let mut stream = Endless::new(&header, &member, 10_240 * member.len() as u64, b"");
    // The raw reads come in pieces of 64 KiB, each about 64 MiB of text:
    // inflating the whole bomb would pass this budget.
    stream.budget = 256 << 10;
    let handed_out = std::sync::Arc::clone(&stream.handed_out);
    let (_, result) = import_stream(stream, Format::Csv, false);
    assert_eq!(
        result.map_err(|e| e.to_string()).expect_err("a bomb"),
        format!("-:2: {TOO_LONG}")
    );
    let read = handed_out.load(std::sync::atomic::Ordering::Relaxed);
    // Each member is about 1 KiB and inflates to 1 MiB. The raw reader
    // reads ahead a buffer of compressed bytes, but only a few MiB of text
    // were inflated: the line's 1 MiB, the splitter's buffer, the
    // inflating thread's chunks ahead.
    assert!(read <= 256 << 10, "{read} compressed bytes read");
}

#[test]
fn a_million_columns_fail_the_header_at_once() {
    // [IM16] [IM5]: a header of a million columns is longer than a line
    // may be; one of 200,000 short ones is within the line limit, and fails
    // on the column limit (it used to take minutes: each name was compared
    // with every name before it).
    let mut million = b"time,account".to_vec();
    for i in 0..1_000_000 {
        million.extend_from_slice(format!(",m{i}").as_bytes());
    }
    million.extend_from_slice(b"\n1550052000,ann,1\n");
    let (_, result, _, dir) = import_text("s.csv", &million, opts());
    assert_eq!(
        error_text(result, dir.path()),
        format!("DIR/s.csv:1: {TOO_LONG}")
    );

    let many = format!("time,account{}\n1550052000,ann\n", ",x".repeat(199_998));
    let (_, result, _, dir) = import_text("s.csv", &many, opts());
    assert_eq!(
        error_text(result, dir.path()),
        "DIR/s.csv:1: the header has 200000 columns; the most allowed is 1024"
    );

    // 1024 columns are allowed, 1025 are not.
    for (metrics, allowed) in [(1022, true), (1023, false)] {
        let names: String = (0..metrics).map(|i| format!(",m{i}")).collect();
        let ones = ",1".repeat(metrics);
        let text = format!("time,account{names}\n1550052000,ann{ones}\n");
        let (sink, result, _, dir) = import_text("s.csv", &text, opts());
        if allowed {
            assert_eq!(result.expect("1024 columns").points, metrics as u64);
            assert_eq!(sink.metrics.len(), metrics);
        } else {
            assert_eq!(
                error_text(result, dir.path()),
                "DIR/s.csv:1: the header has 1025 columns; the most allowed is 1024"
            );
        }
    }
}

#[test]
fn a_json_line_with_too_many_keys_is_a_bad_row() {
    // [IM16] [IM6] [IM13]
    let line = |keys: usize| {
        let metrics: String = (0..keys - 2).map(|i| format!(", \"m{i}\": 1")).collect();
        format!("{{\"time\": 1550052000, \"account\": \"ann\"{metrics}}}\n")
    };
    let text = format!("{}{}{}", line(1024), line(1025), line(50_000));
    let skip = ImportOptions {
        skip_bad: true,
        ..opts()
    };
    let (sink, result, _, dir) = import_text("s.jsonl", &text, skip);
    let summary = result.expect("bad rows are skipped");
    assert_eq!((summary.rows, summary.points), (1, 1022));
    assert_eq!(summary.skipped, 2);
    let examples: Vec<String> = summary
        .skipped_examples
        .iter()
        .map(|e| e.replace(&dir.path().display().to_string(), "DIR"))
        .collect();
    assert_eq!(
        examples,
        [
            "DIR/s.jsonl:2: the line has more than 1024 keys",
            "DIR/s.jsonl:3: the line has more than 1024 keys",
        ]
    );
    // The keys past the limit defined no metric.
    assert_eq!(sink.metrics.len(), 1022);
    // The syntax is still checked first.
    let (_, result, _, dir) =
        import_text("s.jsonl", format!("{}x\n", line(2000).trim_end()), opts());
    assert!(
        error_text(result, dir.path()).starts_with("DIR/s.jsonl:1: invalid JSON at column"),
        "a syntax error comes first"
    );
}

#[test]
fn deeply_nested_json_is_a_bad_row_not_a_stack_overflow() {
    // [IM16] [IM6]: serde_json skips a nested value without recursing, and
    // a nested value is not a count, a time or an account.
    for (key, open, close, kind) in [
        (
            "x",
            "[",
            "]",
            "count for key \"x\" is an array, not a number",
        ),
        (
            "x",
            "{\"a\":",
            "}",
            "count for key \"x\" is an object, not a number",
        ),
        ("account", "[", "]", "the account is an array, not a string"),
    ] {
        let mut fields = vec![
            ("time", "1550052000".to_string()),
            ("account", "\"ann\"".to_string()),
            ("x", "1".to_string()),
        ];
        for (name, value) in &mut fields {
            if *name == key {
                *value = format!("{}1{}", open.repeat(100_000), close.repeat(100_000));
            }
        }
        let line: Vec<String> = fields
            .iter()
            .map(|(name, value)| format!("\"{name}\": {value}"))
            .collect();
        let text = format!("{{{}}}\n", line.join(", "));
        let (_, result, _, dir) = import_text("s.jsonl", text, opts());
        assert_eq!(
            error_text(result, dir.path()),
            format!("DIR/s.jsonl:1: {kind}")
        );
    }
}

#[test]
fn a_shard_import_keeps_only_its_accounts() {
    // docs/scale-out.md, [SO3]: the rows of other shards are passed over
    // and counted, whatever they hold; this shard's bad row is still bad.
    let text = "time,account,followers\n\
                2019-02-13T10:00:00Z,ann,5\n\
                2019-02-13T10:00:00Z,bob,6\n\
                2019-02-13T10:00:00Z,cy,7\n\
                2019-02-13T10:00:00Z,dee,8\n";
    let shards = [
        crate::Shard::new(0, 2).unwrap(),
        crate::Shard::new(1, 2).unwrap(),
    ];
    let mut imported = Vec::new();
    for shard in shards {
        let opts = ImportOptions {
            shard: Some(shard),
            ..opts()
        };
        let (sink, result, _, _dir) = import_text("s.csv", text, opts);
        let summary = result.unwrap();
        assert_eq!(summary.rows + summary.other_shards, 4);
        let points = sink.points();
        for (account, ..) in &points {
            assert!(shard.holds(account.as_bytes()), "{account} in {shard}");
        }
        assert_eq!(points.len() as u64, summary.rows);
        imported.extend(points.into_iter().map(|(account, ..)| account));
    }
    imported.sort();
    assert_eq!(imported, ["ann", "bob", "cy", "dee"]);
}

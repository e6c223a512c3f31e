//! `tally repl` used as a person uses it: typed at through a
//! pseudo-terminal (keys in, the screen's bytes out, escape sequences
//! stripped), and fed a script on a pipe.
//!
//! Every pty test waits for what the shell prints (a prompt, a row count)
//! before typing on, never for a fixed time, and gives up after
//! [`TIMEOUT_MS`] with what the screen showed. The environment is pinned:
//! TERM, NO_COLOR, and a history file in a temporary folder, so the tests
//! never touch the real home directory.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tally::Db;

const HOUR: i64 = 3_600_000;
const T0: i64 = 1_550_052_000_000; // 2019-02-13T10:00:00Z
/// How long any one expected output may take to appear.
const TIMEOUT_MS: u64 = 10_000;

/// A database of two days of hourly counts:
/// - adela_mae's followers dip by half at hour 10 and are back at hour 11
///   (a glitch), then fall by a fifth at hour 30 and stay down (a purge);
/// - evada's followers stay at 60, and evada has a second metric, posts.
///
/// So `drop(followers, 5%, 1h)` finds two falls, both adela_mae's.
fn database(dir: &Path) -> PathBuf {
    let path = dir.join("test.db");
    let db = Db::open(&path).unwrap();
    let mut w = db.writer().unwrap();
    for h in 0..48 {
        let t = T0 + h * HOUR;
        let adela = match h {
            10 => 5_000,
            30.. => 8_000,
            _ => 10_000 + h as u64,
        };
        w.append("adela_mae", "followers", t, adela).unwrap();
        w.append("evada", "followers", t, 60).unwrap();
        w.append("evada", "posts", t, 7).unwrap();
    }
    w.commit().unwrap();
    path
}

/// `tally --db DB repl` with the environment the tests pin.
fn repl_command(db: &Path, home: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tally"));
    command
        .arg("--db")
        .arg(db)
        .arg("repl")
        .env("TERM", "xterm")
        .env("NO_COLOR", "1")
        .env("HOME", home)
        .env("TALLY_HISTORY", home.join("history"))
        .env_remove("TALLY_DB")
        .env_remove("XDG_DATA_HOME");
    command
}

#[cfg(unix)]
mod terminal {
    use super::*;

    use rexpect::process::WaitStatus;
    use rexpect::reader::Options;
    use rexpect::session::{PtySession, spawn_with_options};

    /// A running `tally repl` on a pseudo-terminal.
    struct Shell {
        session: PtySession,
    }

    impl Shell {
        /// Starts the shell and waits for its banner and first prompt.
        fn start(db: &Path, home: &Path) -> Shell {
            let options = Options::new()
                .timeout_ms(Some(TIMEOUT_MS))
                .strip_ansi_escape_codes(true);
            let session = spawn_with_options(repl_command(db, home), options).unwrap();
            let mut shell = Shell { session };
            let banner = shell.expect("Ctrl-D to quit");
            assert!(
                banner.contains(&format!("tally {} — type .help", env!("CARGO_PKG_VERSION"))),
                "{banner}"
            );
            shell.expect("tally> ");
            shell
        }

        /// Types `keys` (`\r` is Enter, `\t` is Tab).
        fn send(&mut self, keys: &str) {
            self.session.send(keys).unwrap();
            self.session.flush().unwrap();
        }

        fn control(&mut self, key: char) {
            self.session.send_control(key).unwrap();
        }

        /// Waits for `needle` on the screen and returns what was printed
        /// since the last expectation, up to and including it.
        ///
        /// rexpect hands over the output one byte per `char`, so UTF-8 text
        /// (the table's lines, the sparkline) is looked for, and given
        /// back, in that form.
        fn expect(&mut self, needle: &str) -> String {
            let as_bytes: String = needle.bytes().map(char::from).collect();
            match self.session.exp_string(&as_bytes) {
                Ok(before) => utf8(&(before + &as_bytes)),
                Err(rexpect::error::Error::Timeout { got, .. }) => {
                    panic!(
                        "waited {TIMEOUT_MS} ms for {needle:?}; the screen showed:\n{}",
                        utf8(&got)
                    )
                }
                Err(e) => panic!("waiting for {needle:?}: {e}"),
            }
        }

        /// Waits for the shell to end and returns its exit code.
        fn exit_code(mut self) -> i32 {
            let rest = self.session.exp_eof().map(|s| utf8(&s));
            match self.session.process().wait() {
                Ok(WaitStatus::Exited(_, code)) => code,
                other => panic!("the shell did not exit: {other:?} (output {rest:?})"),
            }
        }
    }

    /// Undoes rexpect's byte-per-char reading.
    fn utf8(text: &str) -> String {
        let bytes: Vec<u8> = text.chars().map(|c| c as u32 as u8).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    fn setup() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let db = database(dir.path());
        (dir, db)
    }

    #[test]
    fn a_typed_query_shows_its_table_and_ctrl_d_leaves() {
        let (dir, db) = setup();
        let mut shell = Shell::start(&db, dir.path());
        shell.send("count(drop(followers, 5%, 1h))\r");
        let screen = shell.expect("(1 row)");
        assert!(screen.contains("│ count │"), "{screen}");
        assert!(screen.contains("│     2 │"), "{screen}");
        shell.expect("tally> ");
        shell.control('d');
        assert_eq!(shell.exit_code(), 0);
    }

    #[test]
    fn tab_completes_a_metric_and_an_account_name() {
        let (dir, db) = setup();
        let mut shell = Shell::start(&db, dir.path());
        // `foll` can only be followers; `ade` only adela_mae, and the
        // completion closes the string.
        shell.send("foll\t");
        shell.expect("followers");
        shell.send("{acc\t");
        shell.expect("account");
        shell.send("=\"ade\t");
        shell.expect("adela_mae\"");
        shell.send("}\r");
        // A long result shows its first and last rows, as DuckDB's shell does.
        let screen = shell.expect("(48 rows, 40 shown: .maxrows 0 shows all)");
        assert!(screen.contains("│ adela_mae ┆ followers ┆"), "{screen}");
        assert!(!screen.contains("evada"), "{screen}");
        shell.expect("tally> ");
        // Meta commands complete too.
        shell.send(".fo\t");
        shell.expect(".format");
        shell.send(" csv\r");
        shell.expect("tally> ");
        shell.send(".format\r");
        shell.expect("\r\ncsv\r\n");
    }

    #[test]
    fn an_open_bracket_continues_the_query_on_the_next_line() {
        let (dir, db) = setup();
        let mut shell = Shell::start(&db, dir.path());
        shell.send("count(drop(\r");
        shell.expect("  ...> ");
        shell.send("followers,\r");
        shell.expect("  ...> ");
        shell.send("5%, 1h))\r");
        let screen = shell.expect("(1 row)");
        assert!(screen.contains("│     2 │"), "{screen}");
        shell.expect("tally> ");
        // The query comes back from the history whole, on one Up.
        shell.send("\x1b[A\r");
        let screen = shell.expect("(1 row)");
        assert!(screen.contains("│     2 │"), "{screen}");
    }

    #[test]
    fn meta_commands_list_metrics_change_the_format_and_time_queries() {
        let (dir, db) = setup();
        let mut shell = Shell::start(&db, dir.path());
        shell.send(".metrics\r");
        let screen = shell.expect("tally> ");
        assert!(screen.contains("followers\r\nposts\r\n"), "{screen}");

        shell.send(".format csv\r");
        shell.expect("tally> ");
        shell.send("count(drop(followers, 5%, 1h))\r");
        let screen = shell.expect("tally> ");
        assert!(screen.contains("count\r\n2\r\n"), "{screen}");

        shell.send(".timer on\r");
        shell.expect("tally> ");
        shell.send("count(followers)\r");
        let screen = shell.expect("tally> ");
        assert!(screen.contains("count\r\n96\r\n"), "{screen}");
        assert!(screen.contains("Run Time: "), "{screen}");

        shell.send(".accounts ev.*\r");
        let screen = shell.expect("(1 account)");
        assert!(screen.contains("evada"), "{screen}");
        assert!(!screen.contains("adela_mae"), "{screen}");

        shell.send(".frobnicate\r");
        shell.expect("error: unknown command .frobnicate");
        shell.expect("tally> ");
        shell.send(".help\r");
        shell.expect("not recovered_within(drop(followers, 5%, 1h), 1d)");
        shell.expect("tally> ");
        shell.send(".quit\r");
        assert_eq!(shell.exit_code(), 0);
    }

    #[test]
    fn a_syntax_error_is_drawn_with_a_caret_and_the_shell_goes_on() {
        let (dir, db) = setup();
        let mut shell = Shell::start(&db, dir.path());
        shell.send("drop(followers, 5x, 1h)\r");
        let screen = shell.expect("tally> ");
        assert!(screen.contains("error: "), "{screen}");
        assert!(
            screen.contains("  drop(followers, 5x, 1h)\r\n                   ^\r\n"),
            "{screen}"
        );
        shell.send("recovered_within(followers, 1d)\r");
        let screen = shell.expect("tally> ");
        assert!(screen.contains("expects a drop table"), "{screen}");
        assert!(screen.contains("                   ^^^^^^^^^"), "{screen}");
        shell.send("count(followers)\r");
        shell.expect("│    96 │");
    }

    #[test]
    fn ctrl_c_cancels_the_line_not_the_shell() {
        let (dir, db) = setup();
        let mut shell = Shell::start(&db, dir.path());
        shell.send("drop(fol");
        shell.expect("drop(fol");
        shell.control('c');
        shell.expect("tally> ");
        // Also at the continuation prompt: the whole query is dropped.
        shell.send("count(\r");
        shell.expect("  ...> ");
        shell.control('c');
        shell.expect("tally> ");
        shell.send("count(followers)\r");
        shell.expect("│    96 │");
        shell.expect("tally> ");
        shell.control('d');
        assert_eq!(shell.exit_code(), 0);
    }

    #[test]
    fn one_series_gets_a_sparkline_with_its_glitch_and_purge_marked() {
        let (dir, db) = setup();
        let mut shell = Shell::start(&db, dir.path());
        shell.send(".maxrows 0\r");
        shell.expect("tally> ");
        shell.send("followers{account=\"adela_mae\"}\r");
        shell.expect("(48 rows)");
        let screen = shell.expect("tally> ");
        let lines: Vec<&str> = screen.lines().collect();
        let title = lines
            .iter()
            .position(|l| l.starts_with("followers of adela_mae: 2019-02-13T10:00:00Z"))
            .unwrap_or_else(|| panic!("no sparkline in:\n{screen}"));
        let (spark, marks) = (lines[title + 1], lines[title + 2]);
        // One column per hour: high, a one-hour dip to the bottom, high
        // again, then a step down that stays.
        let spark: Vec<char> = spark.trim_start().chars().collect();
        assert_eq!(spark.len(), 48, "{screen}");
        assert_eq!(spark[9], '█');
        assert_eq!(spark[10], '▁');
        assert_eq!(spark[11], '█');
        assert!(spark[30..].iter().all(|&c| c == spark[30] && c != '█'));
        // The marks stand under the end of each fall.
        let marks: Vec<char> = marks.chars().skip(2).collect();
        assert_eq!(marks.get(10), Some(&'^'), "{screen}");
        assert_eq!(marks.get(30), Some(&'▼'), "{screen}");
        assert!(lines[title + 3].contains("glitch"), "{screen}");
        assert!(lines[title + 3].contains("purge"), "{screen}");
        // Several accounts: no sparkline.
        shell.send("followers\r");
        let screen = shell.expect("tally> ");
        assert!(screen.contains("(96 rows)"), "{screen}");
        assert!(!screen.contains("followers of"), "{screen}");
    }

    #[test]
    fn a_misspelt_metric_is_named_with_the_closest_one() {
        // [Q50], [Q51]: the empty result, then the notice.
        let (dir, db) = setup();
        let mut shell = Shell::start(&db, dir.path());
        shell.send("count(drop(folowers, 5%, 1h))\r");
        let screen = shell.expect("note: no metric `folowers`; did you mean `followers`?");
        assert!(screen.contains("│     0 │"), "{screen}");
        shell.expect("tally> ");
        shell.send(".plot\r");
        shell.expect("usage: .plot FILE.svg");
        shell.expect("tally> ");
    }

    #[test]
    fn each_query_sees_what_was_imported_since_the_last() {
        let (dir, db) = setup();
        let mut shell = Shell::start(&db, dir.path());
        shell.send("count(posts)\r");
        shell.expect("│    48 │");
        shell.expect("tally> ");
        // Another writer commits while the shell waits at its prompt.
        let writer = Db::open(&db).unwrap();
        let mut w = writer.writer().unwrap();
        w.append("adela_mae", "posts", T0, 3).unwrap();
        w.commit().unwrap();
        shell.send("count(posts)\r");
        shell.expect("│    49 │");
        shell.send(".accounts adela.*\r");
        shell.expect("(1 account)");
    }

    #[test]
    fn history_is_kept_in_the_file_between_sessions() {
        let (dir, db) = setup();
        let mut shell = Shell::start(&db, dir.path());
        shell.send("count(followers{account=\"evada\"})\r");
        shell.expect("│    48 │");
        shell.expect("tally> ");
        shell.control('d');
        assert_eq!(shell.exit_code(), 0);
        let history = std::fs::read_to_string(dir.path().join("history")).unwrap();
        assert!(
            history.contains("count(followers{account=\"evada\"})"),
            "{history}"
        );

        let mut shell = Shell::start(&db, dir.path());
        shell.send("\x1b[A\r");
        shell.expect("│    48 │");
    }
}

/// Runs `tally repl` with `script` on standard input; returns its exit code,
/// standard output and standard error.
fn run_script(script: &str) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path());
    let mut child = repl_command(&db, dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(script.as_bytes()).unwrap();
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    assert!(
        !dir.path().join("history").exists(),
        "a script leaves no history"
    );
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn a_script_prints_csv_without_prompts() {
    let (code, out, err) = run_script(
        "count(drop(followers, 5%, 1h)); count(followers)\n\
         latest(followers{account=\"evada\"})\n",
    );
    assert_eq!(
        out,
        "count\n2\ncount\n96\naccount,metric,time,value\nevada,followers,2019-02-15T09:00:00Z,60\n"
    );
    assert_eq!(err, "");
    assert_eq!(code, 0);
}

#[test]
fn a_failed_query_fails_the_script_after_the_rest_ran() {
    let (code, out, err) = run_script(
        "count(followers)\n\
         drop(followers, 5x, 1h)\n\
         count(posts)\n",
    );
    assert_eq!(out, "count\n96\ncount\n48\n");
    assert!(
        err.contains("  drop(followers, 5x, 1h)\n                   ^\n"),
        "{err}"
    );
    assert_eq!(code, 1);
}

#[test]
fn a_script_may_spread_a_query_over_lines_and_use_meta_commands() {
    let (code, out, err) = run_script(
        ".format json\n\
         topk(1,\n  drop(followers, 5%, 1h),\n  lost_pct)\n\
         .format csv\n\
         .range 2019-02-13T20:00:00Z -\n\
         count(drop(followers, 5%, 1h))\n\
         .range off\n\
         .metrics\n\
         .quit\n\
         count(followers)\n",
    );
    assert_eq!(err, "");
    assert_eq!(code, 0);
    let (json, rest) = out.split_once("]\n").unwrap();
    assert!(
        json.starts_with("[\n  {\"account\": \"adela_mae\""),
        "{out}"
    );
    assert!(json.contains("\"lost_pct\": 50.04"), "{out}");
    // Only the purge is after 20:00; nothing runs after .quit.
    assert_eq!(rest, "count\n1\nfollowers\nposts\n");
}

#[test]
fn a_bad_meta_command_fails_the_script_too() {
    let (code, out, err) = run_script(".format xml\n.nope\ncount(posts)\n");
    assert_eq!(out, "count\n48\n");
    assert!(err.contains("usage: .format table|csv|json"), "{err}");
    assert!(err.contains("unknown command .nope"), "{err}");
    assert_eq!(code, 1);
}

#[test]
fn an_unfinished_query_at_the_end_is_reported() {
    let (code, out, err) = run_script("count(posts)\ndrop(followers, 5%");
    assert_eq!(out, "count\n48\n");
    assert!(err.contains("end of query"), "{err}");
    assert_eq!(code, 1);
}

#[test]
fn notices_go_to_stderr_and_plot_draws_the_last_result() {
    // [Q50], [Q52], [Q60], [Q61]
    let out_dir = tempfile::tempdir().unwrap();
    let path = out_dir.path().join("falls.svg");
    let (code, out, err) = run_script(&format!(
        "latest(followers{{account=\"adela_mea\"}})\n\
         drop(followers, 5%, 1h)\n\
         .plot {}\n",
        path.display()
    ));
    assert_eq!(
        err,
        "note: no account `adela_mea`; did you mean `adela_mae`?\n"
    );
    assert_eq!(code, 0);
    assert!(
        out.starts_with("account,metric,time,value\naccount,metric,start,"),
        "{out}"
    );
    assert!(
        out.ends_with(&format!("wrote {}\n", path.display())),
        "{out}"
    );
    let svg = std::fs::read_to_string(&path).unwrap();
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let count = |class: &str| {
        doc.descendants()
            .filter(|n| n.attribute("class") == Some(class))
            .count()
    };
    assert_eq!(count("fall glitch"), 1, "{svg}");
    assert_eq!(count("fall purge"), 1, "{svg}");
    assert_eq!(count("line"), 1, "{svg}");
}

#[test]
fn plot_needs_a_query_with_a_picture() {
    // [Q60]
    let out_dir = tempfile::tempdir().unwrap();
    let path = out_dir.path().join("none.svg");
    let (code, out, err) = run_script(&format!(
        ".plot {p}\ncount(posts)\n.plot {p}\n",
        p = path.display()
    ));
    assert_eq!(out, "count\n48\n");
    assert!(err.contains("run a query first"), "{err}");
    assert!(err.contains("has no picture"), "{err}");
    assert!(!path.exists());
    assert_eq!(code, 1);
}

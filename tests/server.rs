//! `tally serve` over real HTTP: the real binary is started on a free port
//! of 127.0.0.1 and a real client (ureq) talks to it. Every answer is held
//! against what the CLI says for the same question, and every failure
//! against the status and error docs/http-api.md documents for it; each
//! test names the rules (H…) it checks.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value as Json;

mod support;

use support::{SNAPSHOTS, Server, TALLY, agent};

/// 2019-02-13T10:00:00Z in Unix seconds.
const T0: i64 = 1_550_052_000;
const HOUR: i64 = 3_600;

/// A database in a temporary directory, filled through `tally import`.
struct Fixture {
    _dir: tempfile::TempDir,
    db: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db");
        let csv = dir.path().join("snap.csv");
        std::fs::write(&csv, SNAPSHOTS).unwrap();
        let out = cli(&db, &["import", csv.to_str().unwrap()], None);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Fixture { _dir: dir, db }
    }

    /// An empty database directory that does not exist yet.
    fn empty() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("new.db");
        Fixture { _dir: dir, db }
    }
}

/// Runs the CLI on `db`, with `stdin` if given.
fn cli(db: &Path, args: &[&str], stdin: Option<&[u8]>) -> std::process::Output {
    let mut child = Command::new(TALLY)
        .arg("--db")
        .arg(db)
        .args(args)
        .env_remove("TALLY_DB")
        .env_remove("TALLY_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(bytes) = stdin {
        input.write_all(bytes).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn cli_stdout(db: &Path, args: &[&str]) -> String {
    let out = cli(db, args, None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// An answer: status, content type, body.
struct Answer {
    status: u16,
    content_type: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn json(&self) -> Json {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn read(mut response: ureq::http::Response<ureq::Body>) -> Answer {
    let status = response.status().as_u16();
    let headers: Vec<(String, String)> = response
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let mut body = String::new();
    response
        .body_mut()
        .as_reader()
        .read_to_string(&mut body)
        .unwrap();
    Answer {
        status,
        content_type,
        headers,
        body,
    }
}

fn get(url: &str, params: &[(&str, &str)]) -> Answer {
    let mut request = agent().get(url);
    for (k, v) in params {
        request = request.query(*k, *v);
    }
    read(request.call().unwrap())
}

fn get_with(url: &str, headers: &[(&str, &str)]) -> Answer {
    let mut request = agent().get(url);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    read(request.call().unwrap())
}

fn get_full(url: &str, params: &[(&str, &str)], headers: &[(&str, &str)]) -> Answer {
    let mut request = agent().get(url);
    for (k, v) in params {
        request = request.query(*k, *v);
    }
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    read(request.call().unwrap())
}

fn post_form(url: &str, params: &[(&str, &str)]) -> Answer {
    read(agent().post(url).send_form(params.iter().copied()).unwrap())
}

fn post(url: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
    let mut request = agent().post(url);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    read(request.send(body).unwrap())
}

const QUERIES: [&str; 7] = [
    "followers",
    "followers{account=~\"e.*\"}",
    "drop(followers, 5%, 1h)",
    "recovered_within(drop(followers, 5%, 1h), 1d)",
    "not recovered_within(drop(followers, 5%, 1h), 1d)",
    "summarize(drop(followers, 5%, 1h), 1h)",
    "count(following)",
];

/// H5, H6: a query's CSV is the CLI's CSV byte for byte, and its JSON rows
/// hold the values of the CLI's `--format json`, with typed columns.
#[test]
fn query_answers_as_the_cli_does() {
    let fx = Fixture::new();
    let server = Server::start(&fx.db, &[]);
    for q in QUERIES {
        for range in [None, Some(("2019-02-13T11:00:00Z", "1550062800"))] {
            let mut args = vec!["query", "--format", "csv"];
            let mut params = vec![("q", q)];
            if let Some((from, to)) = range {
                args.extend(["--from", from, "--to", to]);
                params.extend([("from", from), ("to", to)]);
            }
            args.push(q);
            let want_csv = cli_stdout(&fx.db, &args);
            let mut csv_params = params.clone();
            csv_params.push(("format", "csv"));
            let got = get(&server.url("/api/query"), &csv_params);
            assert_eq!(got.status, 200, "{q}: {}", got.body);
            assert!(got.content_type.starts_with("text/csv"));
            assert_eq!(got.body, want_csv, "{q} {range:?}");

            args[2] = "json";
            let want: Json = serde_json::from_str(&cli_stdout(&fx.db, &args)).unwrap();
            let got = get(&server.url("/api/query"), &params);
            assert_eq!(got.status, 200, "{q}: {}", got.body);
            assert_eq!(got.content_type, "application/json");
            let got = got.json();
            let columns: Vec<&str> = got["columns"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["name"].as_str().unwrap())
                .collect();
            let want_rows = want.as_array().unwrap();
            let got_rows = got["rows"].as_array().unwrap();
            assert_eq!(got_rows.len(), want_rows.len(), "{q}");
            for (g, w) in got_rows.iter().zip(want_rows) {
                for (i, name) in columns.iter().enumerate() {
                    assert_eq!(&g[i], &w[*name], "{q}: column {name}");
                }
            }
            // The types follow the values: strings for text and times,
            // numbers for the rest.
            for (i, column) in got["columns"].as_array().unwrap().iter().enumerate() {
                for row in got_rows {
                    let is_string = row[i].is_string();
                    match column["type"].as_str().unwrap() {
                        "text" | "time" => assert!(is_string, "{q}: {column}"),
                        "int" | "percent" => assert!(row[i].is_number(), "{q}: {column}"),
                        other => panic!("unknown type {other}"),
                    }
                }
            }
        }
    }
    // POST with a form body, as from a web page, answers the same.
    let want = cli_stdout(&fx.db, &["query", "--format", "csv", QUERIES[2]]);
    let got = post_form(
        &server.url("/api/query"),
        &[("q", QUERIES[2]), ("format", "csv")],
    );
    assert_eq!((got.status, got.body.as_str()), (200, want.as_str()));
}

/// H41–H43: the page's three files, with their types and a
/// Content-Security-Policy that forbids remote loads, need no token when
/// the server has one; every other path does. H38: `/api/functions` is
/// the registry. H39: `format=svg` is the CLI's picture, `chart=true` adds
/// it to the JSON, and a query with no picture is 400. H40: the JSON
/// carries the notices the CLI prints.
#[test]
fn the_page_and_the_endpoints_it_uses() {
    let fx = Fixture::new();
    let server = Server::start(&fx.db, &["--token", "tok"]);
    let auth = [("authorization", "Bearer tok")];
    for (path, content_type) in [
        ("/", "text/html; charset=utf-8"),
        ("/app.js", "text/javascript; charset=utf-8"),
        ("/app.css", "text/css; charset=utf-8"),
    ] {
        let got = get_with(&server.url(path), &[]);
        assert_eq!(got.status, 200, "{path}");
        assert_eq!(got.content_type, content_type, "{path}");
        let csp = got.header("content-security-policy").unwrap_or("");
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "connect-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(directive), "{path}: {csp}");
        }
        assert_eq!(got.header("x-content-type-options"), Some("nosniff"));
    }
    assert!(
        get_with(&server.url("/"), &[])
            .body
            .contains("<script src=\"app.js\"")
    );
    for path in ["/api/functions", "/index.html", "/api/query?q=followers"] {
        assert_eq!(get_with(&server.url(path), &[]).status, 401, "{path}");
    }

    let got = get_with(&server.url("/api/functions"), &auth);
    assert_eq!(got.status, 200, "{}", got.body);
    let listed = got.json()["functions"].as_array().unwrap().clone();
    assert_eq!(listed.len(), tally::functions().len());
    for (got, f) in listed.iter().zip(tally::functions()) {
        assert_eq!(got["name"], f.name);
        assert_eq!(got["usage"], f.usage);
        assert_eq!(got["about"], f.about);
        assert_eq!(got["params"].as_array().unwrap().len(), f.params.len());
    }

    let q = "drop(followers, 5%, 1h)";
    let want_svg = cli_stdout(&fx.db, &["query", "--format", "svg", q]);
    assert!(want_svg.contains("fall glitch") && want_svg.contains("fall purge"));
    let got = get_full(
        &server.url("/api/query"),
        &[("q", q), ("format", "svg")],
        &auth,
    );
    assert_eq!(got.status, 200, "{}", got.body);
    assert_eq!(got.content_type, "image/svg+xml");
    assert_eq!(got.body, want_svg);
    let plain = get_full(&server.url("/api/query"), &[("q", q)], &auth).json();
    let charted = get_full(
        &server.url("/api/query"),
        &[("q", q), ("chart", "true")],
        &auth,
    )
    .json();
    assert_eq!(charted["chart"], want_svg.as_str());
    assert_eq!(charted["rows"], plain["rows"]);
    assert!(plain.get("chart").is_none());
    let got = get_full(
        &server.url("/api/query"),
        &[("q", "count(followers)"), ("format", "svg")],
        &auth,
    );
    assert_eq!(got.status, 400, "{}", got.body);
    assert_eq!(got.json()["kind"], "bad_request");
    assert!(
        got.json()["error"]
            .as_str()
            .unwrap()
            .contains("has no picture")
    );
    let got = get_full(
        &server.url("/api/query"),
        &[("q", "count(followers)"), ("chart", "true")],
        &auth,
    );
    assert_eq!(got.json()["chart"], Json::Null, "{}", got.body);

    let typo = "drop(folowers, 5%, 1h)";
    let cli_out = cli(&fx.db, &["query", "--format", "csv", typo], None);
    let stderr = String::from_utf8(cli_out.stderr).unwrap();
    let got = get_full(&server.url("/api/query"), &[("q", typo)], &auth).json();
    assert_eq!(got["rows"], serde_json::json!([]));
    let notices = got["notices"].as_array().unwrap();
    assert_eq!(notices.len(), 1, "{got}");
    assert_eq!(notices[0]["kind"], "unknown_metric");
    assert_eq!(notices[0]["suggestion"], "followers");
    let message = notices[0]["message"].as_str().unwrap();
    assert_eq!(message, "no metric `folowers`; did you mean `followers`?");
    assert!(
        stderr.contains(&format!("tally: note: {message}")),
        "{stderr}"
    );
    assert_eq!(plain["notices"], serde_json::json!([]));
}

/// H10, H11: a bad query answers 400 with the CLI's message, position and
/// caret; a bad range with the CLI's usage message.
#[test]
fn bad_queries_answer_400_with_the_clis_caret() {
    let fx = Fixture::new();
    let server = Server::start(&fx.db, &[]);
    for q in [
        "drop(followers, 5%",
        "recovered_within(followers, 1h)",
        "DROP(followers, 5%, 1h)",
    ] {
        let out = cli(&fx.db, &["query", q], None);
        assert_eq!(out.status.code(), Some(2));
        let caret = String::from_utf8(out.stderr).unwrap();
        let got = get(&server.url("/api/query"), &[("q", q)]);
        assert_eq!(got.status, 400, "{q}");
        let body = got.json();
        assert_eq!(body["status"], "error");
        assert_eq!(body["kind"], "bad_query");
        assert_eq!(body["caret"].as_str().unwrap(), caret, "{q}");
        assert!(caret.contains(body["message"].as_str().unwrap()));
        assert!(body["position"].as_u64().unwrap() >= 1);
    }
    let out = cli(
        &fx.db,
        &[
            "query",
            "--from",
            "1550062800",
            "--to",
            "1550052000",
            "followers",
        ],
        None,
    );
    let message = String::from_utf8(out.stderr).unwrap();
    let got = get(
        &server.url("/api/query"),
        &[
            ("q", "followers"),
            ("from", "1550062800"),
            ("to", "1550052000"),
        ],
    );
    assert_eq!(got.status, 400);
    assert_eq!(got.json()["kind"], "bad_request");
    assert_eq!(
        format!("tally: {}\n", got.json()["error"].as_str().unwrap()),
        message
    );
    let got = get(&server.url("/api/query"), &[]);
    assert_eq!(
        (got.status, got.json()["kind"].clone()),
        (400, "bad_request".into())
    );
    let got = get(&server.url("/api/nothing"), &[]);
    assert_eq!(
        (got.status, got.json()["kind"].clone()),
        (404, "not_found".into())
    );
}

/// H13–H15: metrics, accounts page by page, and stats as `tally stats`.
#[test]
fn metadata_answers_as_the_database_holds() {
    let fx = Fixture::new();
    let server = Server::start(&fx.db, &[]);
    let got = get(&server.url("/api/metrics"), &[]).json();
    assert_eq!(
        got["metrics"],
        serde_json::json!(["followers", "following"])
    );

    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut params = vec![("limit", "2")];
        if let Some(a) = &after {
            params.push(("after", a.as_str()));
        }
        let page = get(&server.url("/api/accounts"), &params).json();
        for a in page["accounts"].as_array().unwrap() {
            seen.push(a.as_str().unwrap().to_string());
        }
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, ["adela_mae", "evada, \"the\" first", "ünïcode"]);
    let got = get(&server.url("/api/accounts"), &[("match", "[ae].*")]).json();
    assert_eq!(
        got["accounts"],
        serde_json::json!(["adela_mae", "evada, \"the\" first"])
    );
    let got = get(&server.url("/api/accounts"), &[("match", "a)|(b")]);
    assert_eq!(got.status, 400);

    let stats = cli_stdout(&fx.db, &["stats"]);
    let got = get(&server.url("/api/stats"), &[]).json();
    for key in ["series", "accounts", "metrics", "points", "segments"] {
        let line = stats
            .lines()
            .find(|l| l.starts_with(key) && l[key.len()..].starts_with(' '))
            .unwrap();
        let want: u64 = line[key.len()..].trim().parse().unwrap();
        assert_eq!(got[key].as_u64(), Some(want), "{key}");
    }
    assert_eq!(got["time_range"]["from"], "2019-02-13T10:00:00Z");
}

/// The state as the CLI sees it: stats and every point.
fn state(db: &Path) -> (String, String) {
    (
        cli_stdout(db, &["stats"])
            .lines()
            .filter(|l| !l.starts_with("bytes"))
            .collect(),
        cli_stdout(db, &["query", "--format", "csv", "followers"])
            + &cli_stdout(db, &["query", "--format", "csv", "following"]),
    )
}

/// H7–H9: an import through HTTP is seen by the CLI; a bad row answers 400
/// with the CLI's line and message and changes nothing; a read-only
/// server refuses with 403.
#[test]
fn imports_commit_whole_or_not_at_all() {
    let fx = Fixture::new();
    let ro = Server::start(&fx.db, &[]);
    let before = state(&fx.db);
    let body = b"time,account,followers\n2019-02-13T16:00:00Z,adela_mae,10300\n";
    let got = post(
        &ro.url("/api/import"),
        &[("content-type", "text/csv")],
        body,
    );
    assert_eq!(
        (got.status, got.json()["kind"].clone()),
        (403, "read_only".into())
    );
    drop(ro);
    assert_eq!(state(&fx.db), before);

    let server = Server::start(&fx.db, &["--allow-import"]);
    // A bad row on line 3: the CLI's message for the same bytes on stdin.
    let bad = b"time,account,followers\n2019-02-13T16:00:00Z,adela_mae,10300\n2019-02-13T16:00:00Z,evada,-5\n";
    let out = cli(&fx.db, &["import", "-"], Some(bad));
    assert_eq!(out.status.code(), Some(1));
    let cli_message = String::from_utf8(out.stderr).unwrap();
    let got = post(
        &server.url("/api/import"),
        &[("content-type", "text/csv")],
        bad,
    );
    assert_eq!(got.status, 400, "{}", got.body);
    let body = got.json();
    assert_eq!(body["kind"], "bad_row");
    assert_eq!(body["line"], 3);
    assert_eq!(
        cli_message,
        format!("tally: -:3: {}\n", body["reason"].as_str().unwrap())
    );
    assert!(body["error"].as_str().unwrap().starts_with("body:3: "));
    assert_eq!(
        state(&fx.db),
        before,
        "a rejected body changed the database"
    );

    // Content-Encoding that is not gzip, and gzip that is not said.
    let got = post(
        &server.url("/api/import"),
        &[("content-encoding", "br")],
        body_bytes(),
    );
    assert_eq!(
        (got.status, got.json()["kind"].clone()),
        (415, "unsupported_encoding".into())
    );
    let gz = gzip(body_bytes());
    let got = post(&server.url("/api/import"), &[], &gz);
    assert_eq!(got.status, 400);
    assert_eq!(state(&fx.db), before);

    // A good gzip body commits, and the CLI sees it at once.
    let got = post(
        &server.url("/api/import"),
        &[("content-encoding", "gzip"), ("content-type", "text/csv")],
        &gz,
    );
    assert_eq!(got.status, 200, "{}", got.body);
    assert_eq!(got.json()["rows"], 2);
    assert_eq!(got.json()["new_series"], 1);
    let after = cli_stdout(
        &fx.db,
        &[
            "query",
            "--format",
            "csv",
            "latest(followers{account=\"newcomer\"})",
        ],
    );
    assert_eq!(
        after,
        "account,metric,time,value\nnewcomer,followers,2019-02-13T16:00:00Z,77\n"
    );
    // JSON lines too, told from the body.
    let got = post(
        &server.url("/api/import?at=2019-02-13T17:00:00Z"),
        &[],
        b"{\"account\":\"newcomer\",\"followers\":78}\n",
    );
    assert_eq!(got.status, 200, "{}", got.body);
    let via_http = get(
        &server.url("/api/query"),
        &[
            ("q", "latest(followers{account=\"newcomer\"})"),
            ("format", "csv"),
        ],
    );
    assert_eq!(
        via_http.body,
        "account,metric,time,value\nnewcomer,followers,2019-02-13T17:00:00Z,78\n"
    );
}

fn body_bytes() -> &'static [u8] {
    b"time,account,followers\n2019-02-13T16:00:00Z,adela_mae,10300\n2019-02-13T16:00:00Z,newcomer,77\n"
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut child = Command::new("gzip")
        .arg("-c")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    child.wait_with_output().unwrap().stdout
}

/// H4, H9: while `tally import` from a shell holds the write lock, an
/// import through HTTP answers 409 and changes nothing; once the shell's
/// import commits, the server sees it without a restart.
#[test]
fn a_shell_import_locks_out_http_imports_and_is_then_seen() {
    let fx = Fixture::new();
    let server = Server::start(&fx.db, &["--allow-import"]);
    let before = state(&fx.db);
    let mut shell = Command::new(TALLY)
        .arg("--db")
        .arg(&fx.db)
        .args(["import", "--format", "csv", "-"])
        .env_remove("TALLY_DB")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = shell.stdin.take().unwrap();
    stdin
        .write_all(b"time,account,followers\n2019-02-13T16:00:00Z,from_shell,1\n")
        .unwrap();
    stdin.flush().unwrap();
    // The shell's import takes the lock before it reads standard input,
    // which stays open: give it a moment to start.
    std::thread::sleep(Duration::from_millis(1500));
    let got = post(
        &server.url("/api/import"),
        &[("content-type", "text/csv")],
        body_bytes(),
    );
    assert_eq!(got.status, 409, "{}", got.body);
    assert_eq!(got.json()["kind"], "locked");
    drop(stdin);
    let out = shell.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(state(&fx.db), before);
    let got = get(
        &server.url("/api/query"),
        &[
            ("q", "followers{account=\"from_shell\"}"),
            ("format", "csv"),
        ],
    );
    assert_eq!(
        got.body,
        "account,metric,time,value\nfrom_shell,followers,2019-02-13T16:00:00Z,1\n"
    );
    assert!(
        !state(&fx.db).1.contains("newcomer"),
        "the refused import left points"
    );
}

/// H30, H31: beyond loopback the server will not start without a token;
/// with one, a missing or wrong token answers 401 in each API's format.
#[test]
fn tokens_are_required_and_checked() {
    let fx = Fixture::new();
    let out = Command::new(TALLY)
        .arg("--db")
        .arg(&fx.db)
        .args(["serve", "--listen", "0.0.0.0:0"])
        .env_remove("TALLY_TOKEN")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs a bearer token"));

    let server = Server::start(&fx.db, &["--token", "s3cret"]);
    let url = server.url("/api/query?q=followers");
    let missing = get_with(&url, &[]);
    assert_eq!(missing.status, 401);
    assert_eq!(missing.json()["kind"], "unauthorized");
    assert_eq!(
        missing.header("www-authenticate"),
        Some("Bearer realm=\"tally\"")
    );
    let wrong = get_with(&url, &[("authorization", "Bearer s3creT")]);
    assert_eq!(
        (wrong.status, wrong.json()["kind"].clone()),
        (401, "unauthorized".into())
    );
    let right = get_with(&url, &[("authorization", "Bearer s3cret")]);
    assert_eq!(right.status, 200);
    let prom = get_with(&server.url("/prometheus/api/v1/labels"), &[]);
    assert_eq!(prom.status, 401);
    assert_eq!(prom.json()["status"], "error");
    assert_eq!(prom.json()["errorType"], "unauthorized");
}

/// H32: a body over --max-body answers 413 and changes nothing.
#[test]
fn oversized_bodies_answer_413() {
    let fx = Fixture::new();
    let server = Server::start(&fx.db, &["--allow-import", "--max-body", "1KiB"]);
    let before = state(&fx.db);
    let mut big = b"time,account,followers\n".to_vec();
    for i in 0..100 {
        big.extend_from_slice(format!("2019-02-13T16:00:00Z,big_{i},1\n").as_bytes());
    }
    assert!(big.len() > 1024);
    let got = post(
        &server.url("/api/import"),
        &[("content-type", "text/csv")],
        &big,
    );
    assert_eq!(
        (got.status, got.json()["kind"].clone()),
        (413, "too_large".into())
    );
    let long_query = format!("followers{{account=\"{}\"}}", "x".repeat(2000));
    let got = post_form(&server.url("/api/query"), &[("q", long_query.as_str())]);
    assert_eq!(got.status, 413);
    assert_eq!(state(&fx.db), before);
}

/// A query that reads every series of [`big_db`].
const SLOW_QUERY: &str = "recovered_within(drop(resample(followers, 1h), 1%, 1d), 1w)";

/// A database of 3,000 generated accounts over 200 hours, in `dir`.
fn big_db(dir: &Path) -> PathBuf {
    let db = dir.join("big.db");
    let data = dir.join("data");
    let out = Command::new(TALLY)
        .args([
            "generate",
            "--accounts",
            "3000",
            "--hours",
            "200",
            "--single-file",
            "--out",
        ])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(
        &db,
        &["import", data.join("snapshots").to_str().unwrap()],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    db
}

/// H44: the same question asked by many clients at once is answered once
/// and shared, and only with requests that want the same bytes: sixteen
/// clients ask one drop() over the big database at the same moment, half
/// as JSON and half as CSV (and with the spacing of the query changed,
/// which its canonical text makes the same question), under
/// `--max-queries 1`, so that the waiters would queue for the one slot if
/// they did not share. Every answer must be exactly the CLI's for its
/// format.
#[test]
fn identical_concurrent_queries_share_one_answer_per_format() {
    let dir = tempfile::tempdir().unwrap();
    let db = big_db(dir.path());
    let server = Server::start(&db, &["--max-queries", "1"]);
    let want_csv = cli_stdout(
        &db,
        &["query", "--format", "csv", "drop(followers, 5%, 1h)"],
    );
    let want_json = get(
        &server.url("/api/query"),
        &[("q", "drop(followers, 5%, 1h)"), ("format", "json")],
    );
    assert_eq!(want_json.status, 200, "{}", want_json.body);
    let url = server.url("/api/query");
    let answers: Vec<(bool, Answer)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..16)
            .map(|i| {
                let url = url.clone();
                scope.spawn(move || {
                    let csv = i % 2 == 0;
                    let q = if i % 4 < 2 {
                        "drop(followers, 5%, 1h)"
                    } else {
                        "drop(followers,5%,1h)"
                    };
                    let format = if csv { "csv" } else { "json" };
                    (csv, get(&url, &[("q", q), ("format", format)]))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (csv, got) in answers {
        assert_eq!(got.status, 200, "{}", got.body);
        if csv {
            assert!(got.content_type.starts_with("text/csv"));
            assert_eq!(got.body, want_csv);
        } else {
            assert_eq!(got.content_type, "application/json");
            assert_eq!(got.body, want_json.body);
        }
    }
}

/// H34: while every query slot (`--max-queries 1`) is taken, a query that
/// waits its whole time limit for a turn answers 503 (`unavailable` in
/// Prometheus's format, the native API's `busy`) with `Retry-After: 1`,
/// and the queries holding the slot still answer. Three clients keep the
/// one slot taken with queries over the whole database; the waiter is a
/// Prometheus query whose `timeout` shortens its limit to 5 ms, so that its
/// limit, not theirs, runs out.
#[test]
fn queries_beyond_max_queries_answer_503_busy() {
    let dir = tempfile::tempdir().unwrap();
    let db = big_db(dir.path());
    let server = Server::start(&db, &["--max-queries", "1"]);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hogs: Vec<_> = (0..3)
        .map(|_| {
            let url = server.url("/api/query");
            let stop = std::sync::Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut answers = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    answers.push(get(&url, &[("q", SLOW_QUERY)]));
                }
                answers
            })
        })
        .collect();
    let started = Instant::now();
    let mut busy = None;
    while busy.is_none() && started.elapsed() < Duration::from_secs(20) {
        let got = get(
            &server.url("/prometheus/api/v1/query"),
            &[
                ("query", "followers{account=\"nobody\"}"),
                ("timeout", "5ms"),
            ],
        );
        match got.status {
            // The slot was free, or the waiter got it too late to finish
            // (`timeout`): not the case looked for.
            200 | 503 if got.json()["errorType"] != "unavailable" => {}
            503 => busy = Some(got),
            other => panic!("unexpected {other}: {}", got.body),
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let busy = busy.expect("in 20 s, no query found the slot taken");
    assert_eq!(busy.json()["errorType"], "unavailable", "{}", busy.body);
    assert_eq!(busy.header("retry-after"), Some("1"));
    let cli_rows = cli_stdout(&db, &["query", "--format", "csv", SLOW_QUERY])
        .lines()
        .count()
        - 1;
    for hog in hogs {
        for answer in hog.join().unwrap() {
            assert_eq!(answer.status, 200, "{}", answer.body);
            assert_eq!(answer.json()["rows"].as_array().unwrap().len(), cli_rows);
        }
    }
}

/// H33: a query over its time limit is cancelled and answers 503 (and
/// Prometheus's `timeout`); the server answers the next one.
#[test]
fn slow_queries_are_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let db = big_db(dir.path());
    let server = Server::start(&db, &["--query-timeout", "1ms"]);
    let q = SLOW_QUERY;
    let got = get(&server.url("/api/query"), &[("q", q)]);
    assert_eq!(got.status, 503, "{}", got.body);
    assert_eq!(got.json()["kind"], "timeout");
    let got = get(
        &server.url("/prometheus/api/v1/query_range"),
        &[
            ("query", "max_over(followers, 1d)"),
            ("start", "1542672000"),
            ("end", "1543392000"),
            ("step", "1h"),
        ],
    );
    assert_eq!(got.status, 503, "{}", got.body);
    assert_eq!(got.json()["errorType"], "timeout");
    drop(server);
    let server = Server::start(&db, &[]);
    let got = get(
        &server.url("/api/query"),
        &[("q", "count(followers{account=\"nobody\"})")],
    );
    assert_eq!(got.status, 200);
}

/// One series, (metric, account), and its points (Unix seconds, value).
type SeriesPoints = ((String, String), Vec<(i64, String)>);

/// The points of a selector, per series, as the CLI prints them.
fn cli_points(db: &Path, selector: &str) -> Vec<SeriesPoints> {
    let text = cli_stdout(db, &["query", "--format", "json", selector]);
    let rows: Json = serde_json::from_str(&text).unwrap();
    let mut out: Vec<SeriesPoints> = Vec::new();
    for row in rows.as_array().unwrap() {
        let key = (
            row["metric"].as_str().unwrap().to_string(),
            row["account"].as_str().unwrap().to_string(),
        );
        let time = row["time"].as_str().unwrap();
        let t = time_seconds(time);
        let v = row["value"].to_string();
        match out.last_mut() {
            Some((k, points)) if *k == key => points.push((t, v)),
            _ => out.push((key, vec![(t, v)])),
        }
    }
    out
}

/// Seconds of an RFC 3339 time of the fixture (whole hours of 2019-02-13).
fn time_seconds(text: &str) -> i64 {
    let hour: i64 = text["2019-02-13T".len().."2019-02-13T".len() + 2]
        .parse()
        .unwrap();
    T0 + (hour - 10) * HOUR
}

/// What Prometheus answers at `t`: the latest point in (t − lookback, t].
fn at(points: &[(i64, String)], t: i64, lookback: i64) -> Option<String> {
    points
        .iter()
        .rev()
        .find(|(pt, _)| *pt <= t)
        .filter(|(pt, _)| *pt > t - lookback)
        .map(|(_, v)| v.clone())
}

/// H22–H24, H27: instant and range queries answer Prometheus's JSON, with
/// the values the CLI's points give under the lookback; GET and POST
/// answer alike; errors have Prometheus's format.
#[test]
fn prometheus_queries_sample_the_clis_points() {
    let fx = Fixture::new();
    let server = Server::start(&fx.db, &[]);
    let selector = "followers{account=~\"[ae].*\"}";
    let points = cli_points(&fx.db, selector);
    assert_eq!(points.len(), 2);

    // Instant, at times on, between and after the points, with the default
    // lookback (5m) and with an hour.
    for t in [
        T0,
        T0 + 60,
        T0 + 299,
        T0 + 300,
        T0 + HOUR + 1800,
        T0 + 5 * HOUR + 59 * 60,
    ] {
        for lookback in [300, HOUR] {
            let ts = t.to_string();
            let lb = format!("{lookback}s");
            let mut params = vec![("query", selector), ("time", ts.as_str())];
            if lookback != 300 {
                params.push(("lookback_delta", lb.as_str()));
            }
            let got = get(&server.url("/prometheus/api/v1/query"), &params);
            assert_eq!(got.status, 200, "{}", got.body);
            let mut result = Vec::new();
            for ((metric, account), pts) in &points {
                if let Some(v) = at(pts, t, lookback) {
                    result.push(serde_json::json!({
                        "metric": {"__name__": metric, "account": account},
                        "value": [t, v.trim_matches('"')],
                    }));
                }
            }
            let want = serde_json::json!({
                "status": "success",
                "data": {"resultType": "vector", "result": result},
            });
            assert_eq!(got.json(), want, "t={t} lookback={lookback}");
            let posted = post_form(&server.url("/prometheus/api/v1/query"), &params);
            assert_eq!(posted.body, got.body);
        }
    }

    // Range, every 20 minutes over the whole fixture, with an hour's
    // lookback.
    let (start, end, step) = (T0 - HOUR, T0 + 6 * HOUR, 1200);
    let (s, e) = (start.to_string(), end.to_string());
    let got = get(
        &server.url("/prometheus/api/v1/query_range"),
        &[
            ("query", selector),
            ("start", &s),
            ("end", &e),
            ("step", "20m"),
            ("lookback_delta", "1h"),
        ],
    );
    assert_eq!(got.status, 200, "{}", got.body);
    let mut result = Vec::new();
    for ((metric, account), pts) in &points {
        let values: Vec<Json> = (0..)
            .map(|k| start + k * step)
            .take_while(|t| *t <= end)
            .filter_map(|t| at(pts, t, HOUR).map(|v| serde_json::json!([t, v.trim_matches('"')])))
            .collect();
        result.push(serde_json::json!({
            "metric": {"__name__": metric, "account": account},
            "values": values,
        }));
    }
    let want = serde_json::json!({"status": "success", "data": {"resultType": "matrix", "result": result}});
    assert_eq!(got.json(), want);

    // A function of series sees the points before `start`.
    let got = get(
        &server.url("/prometheus/api/v1/query"),
        &[
            ("query", "change(followers{account=\"adela_mae\"}, 1d)"),
            ("time", &(T0 + 3 * HOUR).to_string()),
        ],
    );
    assert_eq!(got.json()["data"]["result"][0]["value"][1], "6");

    // Errors: not a series, a syntax error, bad parameters.
    for (params, status, error_type) in [
        (vec![("query", "drop(followers, 5%, 1h)")], 400, "bad_data"),
        (vec![("query", "followers{")], 400, "bad_data"),
        (
            vec![("query", "followers"), ("time", "soon")],
            400,
            "bad_data",
        ),
        (vec![], 400, "bad_data"),
    ] {
        let got = get(&server.url("/prometheus/api/v1/query"), &params);
        assert_eq!(got.status, status, "{params:?}");
        let body = got.json();
        assert_eq!(body["status"], "error");
        assert_eq!(body["errorType"], error_type);
        assert!(body["error"].is_string());
    }
    let got = get(
        &server.url("/prometheus/api/v1/query_range"),
        &[
            ("query", "followers"),
            ("start", "100"),
            ("end", "10000000"),
            ("step", "1"),
        ],
    );
    assert_eq!(
        (got.status, got.json()["errorType"].clone()),
        (400, "bad_data".into())
    );
    // Grafana's connection test.
    let got = post_form(
        &server.url("/prometheus/api/v1/query"),
        &[("query", "1+1"), ("time", "1550052000")],
    );
    assert_eq!(
        got.json(),
        serde_json::json!({"status":"success","data":{"resultType":"scalar","result":[1550052000,"2"]}})
    );
}

/// H25, H26, H28: series, labels, label values and buildinfo.
#[test]
fn prometheus_metadata_endpoints() {
    let fx = Fixture::new();
    let server = Server::start(&fx.db, &[]);
    let got = get(
        &server.url("/prometheus/api/v1/series"),
        &[
            ("match[]", "followers{account=~\"[eü].*\"}"),
            ("match[]", "following{account=\"adela_mae\"}"),
        ],
    );
    assert_eq!(
        got.json(),
        serde_json::json!({"status":"success","data":[
            {"__name__":"followers","account":"evada, \"the\" first"},
            {"__name__":"followers","account":"ünïcode"},
            {"__name__":"following","account":"adela_mae"},
        ]})
    );
    let got = get(&server.url("/prometheus/api/v1/series"), &[]);
    assert_eq!(
        (got.status, got.json()["errorType"].clone()),
        (400, "bad_data".into())
    );
    let got = get(&server.url("/prometheus/api/v1/labels"), &[]);
    assert_eq!(
        got.json(),
        serde_json::json!({"status":"success","data":["__name__","account"]})
    );
    let got = get(&server.url("/prometheus/api/v1/label/__name__/values"), &[]);
    assert_eq!(
        got.json(),
        serde_json::json!({"status":"success","data":["followers","following"]})
    );
    let got = get(
        &server.url("/prometheus/api/v1/label/account/values"),
        &[("match[]", "following{account!=\"adela_mae\"}")],
    );
    assert_eq!(
        got.json(),
        serde_json::json!({"status":"success","data":["evada, \"the\" first","ünïcode"]})
    );
    let got = get(&server.url("/prometheus/api/v1/label/job/values"), &[]);
    assert_eq!(
        got.json(),
        serde_json::json!({"status":"success","data":[]})
    );
    let got = get(&server.url("/prometheus/api/v1/status/buildinfo"), &[]).json();
    assert_eq!(got["status"], "success");
    assert!(got["data"]["version"].as_str().unwrap().starts_with("2."));
    assert!(
        got["data"]["revision"]
            .as_str()
            .unwrap()
            .starts_with("tally ")
    );
}

/// H35, H36: CORS is off unless an origin is named.
#[test]
fn cors_is_off_by_default() {
    let fx = Fixture::new();
    let server = Server::start(&fx.db, &[]);
    let got = get_with(
        &server.url("/api/metrics"),
        &[("origin", "https://evil.example")],
    );
    assert_eq!(got.status, 200);
    assert_eq!(got.header("access-control-allow-origin"), None);
    drop(server);
    let server = Server::start(&fx.db, &["--cors-origin", "https://grafana.example"]);
    let got = get_with(
        &server.url("/api/metrics"),
        &[("origin", "https://grafana.example")],
    );
    assert_eq!(
        got.header("access-control-allow-origin"),
        Some("https://grafana.example")
    );
}

/// H3: SIGTERM stops the server cleanly (exit 0); a server with
/// --allow-import creates a database that did not exist.
#[test]
fn sigterm_stops_cleanly() {
    let fx = Fixture::empty();
    let out = cli(&fx.db, &["serve", "--listen", "127.0.0.1:0"], None);
    assert!(
        !out.status.success(),
        "a read-only server opened a missing database"
    );
    let server = Server::start(&fx.db, &["--allow-import"]);
    let got = post(
        &server.url("/api/import"),
        &[("content-type", "text/csv")],
        body_bytes(),
    );
    assert_eq!(got.status, 200, "{}", got.body);
    let status = server.stop();
    assert!(status.success(), "{status:?}");
    assert!(cli_stdout(&fx.db, &["query", "--format", "csv", "followers"]).contains("newcomer"));
}

/// H29: `promtool query` reads tally as it reads Prometheus. Skipped, with
/// a message, where promtool (Debian's `prometheus` package) is missing.
#[test]
fn promtool_reads_the_prometheus_api() {
    if Command::new("promtool").arg("--version").output().is_err() {
        eprintln!(
            "SKIPPED promtool_reads_the_prometheus_api: promtool is not installed (apt-get install prometheus)"
        );
        return;
    }
    let fx = Fixture::new();
    let server = Server::start(&fx.db, &["--lookback", "1h"]);
    let base = server.url("/prometheus");
    let promtool = |args: &[&str]| {
        let out = Command::new("promtool").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "promtool {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let t = (T0 + 3 * HOUR + 1800).to_string();
    let got = promtool(&[
        "query",
        "instant",
        "--time",
        &t,
        &base,
        "followers{account=\"adela_mae\"}",
    ]);
    // The sample's time is the evaluation time, as in Prometheus.
    assert!(
        got.contains("followers{account=\"adela_mae\"} => 10240 @[1550064600]"),
        "{got}"
    );
    let got = promtool(&[
        "query",
        "range",
        "--start",
        &T0.to_string(),
        "--end",
        &(T0 + 2 * HOUR).to_string(),
        "--step",
        "1h",
        &base,
        "followers{account=\"adela_mae\"}",
    ]);
    assert!(
        got.contains("10234 @[1550052000]") && got.contains("224 @[1550055600]"),
        "{got}"
    );
    let got = promtool(&[
        "query",
        "series",
        "--match",
        "following{account=~\"a.*\"}",
        &base,
    ]);
    assert!(
        got.contains("following") && got.contains("adela_mae"),
        "{got}"
    );
    let got = promtool(&["query", "labels", &base, "account"]);
    assert!(got.contains("ünïcode"), "{got}");
}

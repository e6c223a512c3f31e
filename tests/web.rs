//! The web page of `tally serve` (docs/http-api.md, rules H41–H43) in a
//! real browser: headless Chromium (Debian's `chromium`), driven through
//! chromedriver (`chromium-driver`) over the W3C WebDriver HTTP protocol
//! with a plain HTTP client. The real binary serves a small database with
//! a token; the page's table, chart, completions and errors are held
//! against what the CLI and the API answer for the same questions. Where
//! Chromium or chromedriver is missing the test says it skipped, as
//! tests/server.rs does for promtool; `.ci/run` installs both when it can.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};

mod support;

use support::{SNAPSHOTS, Server, TALLY, agent};

const TOKEN: &str = "web-t0ken";

/// WebDriver's codes for the Enter and Tab keys.
const ENTER: &str = "\u{E007}";
const TAB: &str = "\u{E004}";

/// How long the page may take to show an answer; far above what it needs.
const PATIENCE: Duration = Duration::from_secs(10);

/// Chromium and chromedriver, where Debian puts them, unless `CHROMIUM`
/// and `CHROMEDRIVER` name others; `None` when either is missing.
fn browser() -> Option<(PathBuf, PathBuf)> {
    let path = |var: &str, default: &str| {
        PathBuf::from(std::env::var_os(var).unwrap_or_else(|| default.into()))
    };
    let chromium = path("CHROMIUM", "/usr/bin/chromium");
    let driver = path("CHROMEDRIVER", "/usr/bin/chromedriver");
    (chromium.exists() && driver.exists()).then_some((chromium, driver))
}

/// Runs the CLI on `db` and returns its standard output.
fn cli_stdout(db: &Path, args: &[&str]) -> String {
    let out = Command::new(TALLY)
        .arg("--db")
        .arg(db)
        .args(args)
        .env_remove("TALLY_DB")
        .env_remove("TALLY_TOKEN")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tally {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// GET `path` with the token, as JSON.
fn api(server: &Server, path: &str, params: &[(&str, &str)]) -> Json {
    let mut request = agent()
        .get(format!("{}{path}", server.base))
        .header("authorization", format!("Bearer {TOKEN}"));
    for (k, v) in params {
        request = request.query(*k, *v);
    }
    read_json(request.call().unwrap())
}

/// The body of an answer, as JSON.
fn read_json(mut response: ureq::http::Response<ureq::Body>) -> Json {
    let mut body = String::new();
    response
        .body_mut()
        .as_reader()
        .read_to_string(&mut body)
        .unwrap();
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// chromedriver on a free port of 127.0.0.1, killed when dropped.
struct Driver {
    child: Child,
    base: String,
    chromium: PathBuf,
}

impl Driver {
    fn start(chromium: PathBuf, driver: &Path) -> Driver {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let driver = Driver {
            child,
            base: format!("http://127.0.0.1:{port}"),
            chromium,
        };
        let started = Instant::now();
        loop {
            let ready = agent()
                .get(format!("{}/status", driver.base))
                .call()
                .ok()
                .is_some_and(|r| read_json(r)["value"]["ready"] == true);
            if ready {
                return driver;
            }
            assert!(started.elapsed() < PATIENCE, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A new headless browser window of `width` × `height`.
    fn session(&self, width: u32, height: u32) -> Session {
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": self.chromium,
                // /dev/shm is small in many containers; Chromium then
                // uses /tmp instead of crashing.
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage",
                         format!("--window-size={width},{height}")],
            },
            "goog:loggingPrefs": {"browser": "ALL"},
        }}});
        let answer = send(
            "POST",
            &format!("{}/session", self.base),
            Some(&capabilities),
        );
        let id = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {answer}"))
            .to_string();
        Session {
            base: format!("{}/session/{id}", self.base),
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One WebDriver command; panics on a WebDriver error.
fn send(method: &str, url: &str, body: Option<&Json>) -> Json {
    let response = match (method, body) {
        ("GET", _) => agent().get(url).call(),
        ("DELETE", _) => agent().delete(url).call(),
        (_, body) => agent()
            .post(url)
            .header("content-type", "application/json")
            .send(body.cloned().unwrap_or_else(|| json!({})).to_string()),
    };
    let answer = read_json(response.unwrap());
    assert!(
        answer["value"].get("error").is_none(),
        "WebDriver {method} {url}: {answer}"
    );
    answer
}

/// A browser window; closed when dropped.
struct Session {
    base: String,
}

impl Session {
    fn command(&self, method: &str, path: &str, body: Json) -> Json {
        send(method, &format!("{}{path}", self.base), Some(&body))["value"].take()
    }

    fn navigate(&self, url: &str) {
        self.command("POST", "/url", json!({ "url": url }));
    }

    /// Runs `script` (a function body) in the page and returns its value.
    fn run(&self, script: &str) -> Json {
        self.command(
            "POST",
            "/execute/sync",
            json!({"script": script, "args": []}),
        )
    }

    /// Waits until `script` returns something other than null or false.
    fn wait(&self, what: &str, script: &str) -> Json {
        let started = Instant::now();
        loop {
            let value = self.run(script);
            if !value.is_null() && value != false {
                return value;
            }
            assert!(
                started.elapsed() < PATIENCE,
                "waited {PATIENCE:?} for {what}; the page says: {}",
                self.run("return document.body.innerText")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Types `text` into the element `css` selects.
    fn type_into(&self, css: &str, text: &str) {
        let found = self.command(
            "POST",
            "/element",
            json!({"using": "css selector", "value": css}),
        );
        let id = found["element-6066-11e4-a52e-4f735466cecf"]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {found}"));
        self.command(
            "POST",
            &format!("/element/{id}/value"),
            json!({ "text": text }),
        );
    }

    /// Waits for the query the page runs to end, and returns the state
    /// it ended in (`done` or `error`).
    fn wait_for_answer(&self) -> String {
        self.wait(
            "the query's answer",
            "const s = document.getElementById('status').dataset.state; \
             return s === 'done' || s === 'error' ? s : null",
        )
        .as_str()
        .unwrap()
        .to_string()
    }

    /// The table's cells, header first, as the page shows them.
    fn table(&self) -> Vec<Vec<String>> {
        serde_json::from_value(self.run(
            "return [...document.querySelectorAll('#result tr')]\
                 .map(tr => [...tr.children].map(cell => cell.textContent))",
        ))
        .unwrap()
    }

    /// Waits until the completions offered are `expected` (a list for an
    /// earlier keystroke may show while the last one's is fetched).
    fn expect_completions(&self, expected: &[String]) {
        let started = Instant::now();
        loop {
            let shown = self.run(
                "const list = document.getElementById('completions'); \
                 return list.hidden ? [] : [...list.children].map(li => li.firstChild.textContent)",
            );
            if shown == json!(expected) {
                return;
            }
            assert!(
                started.elapsed() < PATIENCE,
                "the completions offered are {shown}, not {expected:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn query_box(&self) -> String {
        self.run("return document.getElementById('q').value")
            .as_str()
            .unwrap()
            .to_string()
    }

    /// The browser's log entries of level SEVERE.
    fn severe_log(&self) -> Vec<Json> {
        let log = self.command("POST", "/se/log", json!({"type": "browser"}));
        log.as_array()
            .unwrap()
            .iter()
            .filter(|e| e["level"] == "SEVERE")
            .cloned()
            .collect()
    }

    /// A PNG of the window.
    fn screenshot(&self) -> Vec<u8> {
        let text = send("GET", &format!("{}/screenshot", self.base), None);
        let png = base64(text["value"].as_str().unwrap());
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
        png
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = agent().delete(&self.base).call();
    }
}

/// Decodes standard base64 (with padding), as WebDriver sends screenshots.
fn base64(text: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c:?}"),
        }
    };
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut bits, mut count) = (0u32, 0);
    for c in text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
    {
        bits = (bits << 6) | value(c);
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    out
}

/// CSV text as rows of cells.
fn csv_rows(text: &str) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect()
}

/// The shaded falls of an SVG picture: the class and fill of each.
fn falls_of(svg: &str) -> Vec<(String, String)> {
    let doc = roxmltree::Document::parse(svg).unwrap();
    doc.descendants()
        .filter(|n| n.attribute("class").is_some_and(|c| c.starts_with("fall ")))
        .map(|n| {
            (
                n.attribute("class").unwrap_or("").to_string(),
                n.attribute("fill").unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// H41–H43: a shared address runs its query against a server with a
/// token; the page's table is the CLI's, its chart the CLI's picture with
/// the glitch and the purge shaded, its completions the registry's
/// functions and the database's metrics and accounts, its error the API's
/// caret; the browser logs no error (a CSP violation would be one).
#[test]
fn the_page_answers_as_the_cli_in_a_browser() {
    let Some((chromium, chromedriver)) = browser() else {
        eprintln!(
            "SKIPPED the_page_answers_as_the_cli_in_a_browser: chromium or chromedriver is not \
             installed (apt-get install chromium chromium-driver)"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let csv = dir.path().join("snap.csv");
    std::fs::write(&csv, SNAPSHOTS).unwrap();
    cli_stdout(&db, &["import", csv.to_str().unwrap()]);
    let server = Server::start(&db, &["--token", TOKEN]);
    let driver = Driver::start(chromium, &chromedriver);
    let browser = driver.session(1280, 900);

    // H41: an address with a query and a range in it runs that query. H43:
    // the API answers 401 without the token, and the page asks for it.
    let query = "drop(followers, 5%, 1h)";
    let from = "2019-02-13T00:00:00Z";
    let address = form_urlencoded::Serializer::new(String::new())
        .append_pair("q", query)
        .append_pair("from", from)
        .finish();
    browser.navigate(&format!("{}/?{address}", server.base));
    browser.wait(
        "the token to be asked for",
        "return !document.getElementById('login').hidden",
    );
    browser.type_into("#token", &format!("{TOKEN}{ENTER}"));
    assert_eq!(browser.wait_for_answer(), "done");
    let cli_csv = cli_stdout(&db, &["query", "--format", "csv", "--from", from, query]);
    let expected = csv_rows(&cli_csv);
    assert!(expected.len() >= 3, "{cli_csv}");
    assert_eq!(browser.table(), expected);

    // H39: the chart is the CLI's picture: the same bands, a glitch
    // (amber) and a purge (red).
    let cli_svg = cli_stdout(&db, &["query", "--format", "svg", "--from", from, query]);
    let expected_falls = falls_of(&cli_svg);
    let page_falls: Vec<(String, String)> = serde_json::from_value(browser.run(
        "return [...document.querySelectorAll('#chart svg .fall')]\
             .map(e => [e.getAttribute('class'), e.getAttribute('fill')])",
    ))
    .unwrap();
    assert_eq!(page_falls, expected_falls);
    assert!(
        page_falls.iter().any(|(c, _)| c == "fall glitch"),
        "{page_falls:?}"
    );
    assert!(
        page_falls.iter().any(|(c, _)| c == "fall purge"),
        "{page_falls:?}"
    );
    // A picture of the page with its chart, for a person to look at.
    let png = browser.screenshot();
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("web.png");
    std::fs::write(&path, &png).unwrap();
    eprintln!("screenshot: {} ({} bytes)", path.display(), png.len());

    // Completion: a function with its signature from the registry...
    browser.run("const q = document.getElementById('q'); q.value = ''; q.focus()");
    browser.type_into("#q", "recov");
    let recovered = tally::functions()
        .iter()
        .find(|f| f.name == "recovered_within")
        .unwrap();
    browser.expect_completions(&[recovered.usage.to_string()]);
    browser.type_into("#q", TAB);
    assert_eq!(browser.query_box(), "recovered_within(");
    // ...the metrics of the database...
    browser.type_into("#q", "drop(fol");
    let metrics = api(&server, "/api/metrics", &[]);
    let expected: Vec<String> = metrics["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| {
            m.as_str()
                .filter(|m| m.starts_with("fol"))
                .map(str::to_string)
        })
        .collect();
    assert_eq!(expected.len(), 2, "{metrics}");
    browser.expect_completions(&expected);
    browser.type_into("#q", ENTER);
    // ...and its accounts.
    browser.type_into("#q", "{account=\"ad");
    let accounts = api(
        &server,
        "/api/accounts",
        &[("match", "ad.*"), ("metric", "followers")],
    );
    assert_eq!(accounts["accounts"], json!(["adela_mae"]));
    browser.expect_completions(&["adela_mae".to_string()]);
    browser.type_into("#q", TAB);
    browser.type_into("#q", "}, 5%, 1h), 1d)");
    let typed = "recovered_within(drop(followers{account=\"adela_mae\"}, 5%, 1h), 1d)";
    assert_eq!(browser.query_box(), typed);
    // Enter runs it, and the address now names it (H41).
    browser.type_into("#q", ENTER);
    assert_eq!(browser.wait_for_answer(), "done");
    let expected = csv_rows(&cli_stdout(
        &db,
        &["query", "--format", "csv", "--from", from, typed],
    ));
    assert_eq!(browser.table(), expected);
    let search = browser.run("return location.search");
    let search = search.as_str().unwrap().trim_start_matches('?');
    let q: Vec<(String, String)> = form_urlencoded::parse(search.as_bytes())
        .into_owned()
        .collect();
    // The range typed before is kept with the new query.
    assert_eq!(
        q,
        vec![
            ("q".to_string(), typed.to_string()),
            ("from".to_string(), from.to_string())
        ]
    );

    // An error shows the CLI's caret, as the API gives it.
    let bad = "drop(followers, 5%";
    browser.run("const q = document.getElementById('q'); q.value = ''; q.focus()");
    browser.type_into("#q", &format!("{bad}{ENTER}"));
    assert_eq!(browser.wait_for_answer(), "error");
    let api_error = api(&server, "/api/query", &[("q", bad)]);
    let shown = browser.run("return document.getElementById('error').textContent");
    assert_eq!(shown, api_error["caret"], "{api_error}");

    // No script error and no CSP violation; the only failed loads are the
    // 401 that asked for the token and the 400 of the bad query.
    let errors: Vec<Json> = browser
        .severe_log()
        .into_iter()
        .filter(|e| {
            let message = e["message"].as_str().unwrap_or("");
            !(e["source"] == "network"
                && (message.contains("status of 401") || message.contains("status of 400")))
        })
        .collect();
    assert!(errors.is_empty(), "the browser logged errors: {errors:?}");
}

/// The screenshot of docs/http-api.md and the README: the page over the
/// demo database. Run by hand, after `tally --db demo.db demo`:
/// `TALLY_WEB_DOCS_DB=demo.db cargo test --test web -- --ignored`.
#[test]
#[ignore = "writes docs/images/web.png from a demo database named by TALLY_WEB_DOCS_DB"]
fn docs_screenshot() {
    let db = PathBuf::from(std::env::var_os("TALLY_WEB_DOCS_DB").expect("TALLY_WEB_DOCS_DB"));
    let (chromium, chromedriver) = browser().expect("chromium and chromedriver");
    let server = Server::start(&db, &[]);
    let driver = Driver::start(chromium, &chromedriver);
    let browser = driver.session(1100, 820);
    let address = form_urlencoded::Serializer::new(String::new())
        .append_pair(
            "q",
            "drop(followers{account=~\"kizo654|lisolne_lunlo957\"}, 5%, 1h)",
        )
        .finish();
    browser.navigate(&format!("{}/?{address}", server.base));
    assert_eq!(browser.wait_for_answer(), "done");
    let png = browser.screenshot();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/images/web.png");
    std::fs::write(&path, &png).unwrap();
    eprintln!("wrote {} ({} bytes)", path.display(), png.len());
}

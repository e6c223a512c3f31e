//! What the HTTP tests share (tests/server.rs, tests/web.rs): the sample
//! snapshots, the real `tally serve` binary started on a free port of
//! 127.0.0.1, and an HTTP client. Each test file uses part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const TALLY: &str = env!("CARGO_BIN_EXE_tally");

/// Six hourly snapshots from 2019-02-13T10:00:00Z. adela_mae falls and
/// comes back (a glitch); "evada, \"the\" first" falls for good (a purge);
/// ünïcode stays flat.
pub const SNAPSHOTS: &str = "time,account,followers,following
2019-02-13T10:00:00Z,adela_mae,10234,50
2019-02-13T10:00:00Z,\"evada, \"\"the\"\" first\",600,7
2019-02-13T10:00:00Z,ünïcode,5,1
2019-02-13T11:00:00Z,adela_mae,224,50
2019-02-13T11:00:00Z,\"evada, \"\"the\"\" first\",600,7
2019-02-13T11:00:00Z,ünïcode,5,1
2019-02-13T12:00:00Z,adela_mae,10230,51
2019-02-13T12:00:00Z,\"evada, \"\"the\"\" first\",10,7
2019-02-13T12:00:00Z,ünïcode,5,1
2019-02-13T13:00:00Z,adela_mae,10240,51
2019-02-13T13:00:00Z,\"evada, \"\"the\"\" first\",0,7
2019-02-13T13:00:00Z,ünïcode,5,1
2019-02-13T14:00:00Z,adela_mae,10241,52
2019-02-13T14:00:00Z,\"evada, \"\"the\"\" first\",0,8
2019-02-13T15:00:00Z,adela_mae,10242,52
";

/// A running `tally serve`, stopped (SIGKILL) when dropped unless
/// [`Server::stop`] stopped it first.
pub struct Server {
    pub child: Child,
    pub base: String,
}

impl Server {
    pub fn start(db: &Path, flags: &[&str]) -> Server {
        let mut child = Command::new(TALLY)
            .arg("--db")
            .arg(db)
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(flags)
            .env_remove("TALLY_DB")
            .env_remove("TALLY_TOKEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        Server { child, base }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "no exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client that hands back 4xx and 5xx answers instead of failing.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

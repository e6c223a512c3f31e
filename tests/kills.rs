//! A short run of the many-kills script, tests/scripts/kills.sh
//! (docs/reliability.md, "Many kills"): 25 SIGKILLs of the real binary at
//! random moments of imports, merges and compactions, each followed by
//! `tally verify`, a comparison of every point with the script's model, and
//! after each command that runs to its end a check that no leftover
//! remains. The full run (1,000 kills and more) is the script itself.
//!
//! The script needs bash and the usual Unix tools; without bash the test
//! says so and passes.

use std::path::Path;
use std::process::Command;

/// How many kills the short run makes.
const KILLS: &str = "25";

#[test]
#[cfg(unix)]
fn a_short_run_of_the_kills_script_finds_nothing() {
    if Command::new("bash").arg("-c").arg("true").status().is_err() {
        eprintln!("skipped: no bash to run tests/scripts/kills.sh");
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scripts/kills.sh");
    let work = tempfile::tempdir().unwrap();
    let output = Command::new("bash")
        .arg(&script)
        .arg(KILLS)
        .env("TALLY", env!("CARGO_BIN_EXE_tally"))
        // A fixed seed, so that a failure here can be repeated with the
        // script; the moments of the kills still vary with the machine.
        .env("SEED", "20261204")
        .env("KILLS_ACCOUNTS", "40")
        .env("KILLS_DIR", work.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "kills.sh failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(
        stdout.contains(&format!("kills: {KILLS},")) && stdout.contains("failures: 0"),
        "{stdout}\n{stderr}"
    );
    eprintln!("{stdout}");
}

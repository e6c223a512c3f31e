//! `query_text`: arbitrary text through the query front-end and evaluator.
//!
//! The input is the query text, optionally followed by a 0xFF byte (which
//! UTF-8 never contains) and the bytes of a time range
//! ([`crate::common::range_from_bytes`]). Checked:
//!
//! - parsing never panics, and an error renders with its caret ([Q16]);
//! - a query that parses prints a canonical text that parses again and
//!   prints the same text ([Q17]);
//! - running it over the range on a small database, reversed and extreme
//!   ranges included, never panics (errors are fine), and a plain selector
//!   returns only points inside the range ([Q19]).

use std::sync::LazyLock;

use tally::{Db, Error, Point, Query, Value};

use crate::common;

/// The sample database: one day of hourly points of five accounts and two
/// metrics, with a glitch, a purge and a gap. Its directory is removed as
/// soon as it is open: the handle reads the files it mapped, which stay
/// readable once unlinked (docs/format.md, [MG5]), so no run leaves a
/// directory behind.
static DB: LazyLock<Db> = LazyLock::new(|| {
    let dir = common::tempdir();
    let db = Db::open(dir.path()).expect("the sample database opens");
    let mut w = db.writer().expect("the sample database's writer");
    common::append_sample(&mut w, 0..24);
    w.commit().expect("the sample database commits");
    drop(w);
    db
});

pub fn check(data: &[u8]) {
    let (text, range_bytes) = match data.iter().position(|&b| b == 0xFF) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let query = match Query::parse(text) {
        Ok(query) => query,
        Err(Error::Query(e)) => {
            // Rendering slices the query at the error's span: it must hold
            // whatever the span.
            let rendered = e.render();
            assert!(rendered.contains('^'), "no caret in {rendered:?}");
            return;
        }
        Err(e) => panic!("Query::parse failed with a non-query error: {e:?}"),
    };

    // [Q17]: the canonical text parses, to a query whose text is the same.
    let canonical = query.to_string();
    let again = match Query::parse(&canonical) {
        Ok(q) => q,
        Err(e) => panic!("the canonical text {canonical:?} of {text:?} does not parse: {e}"),
    };
    assert_eq!(
        again.to_string(),
        canonical,
        "printing is not idempotent for {text:?}"
    );
    assert_eq!(again.columns(), query.columns(), "for {text:?}");

    let range = common::range_from_bytes(range_bytes);
    if common::SKIP_REVERSED_RANGES && range.from > range.to {
        return;
    }
    let db = &*DB;
    if let Ok(table) = query.clone().range(range).run(db) {
        let mut printed = String::new();
        for row in table.rows() {
            assert_eq!(row.len(), table.columns().len(), "for {text:?}");
            for value in row {
                // Times print as RFC 3339 whatever their value.
                printed.push_str(&value.to_string());
            }
        }
        // A selector returns stored points, all inside the range.
        if !canonical.contains('(')
            && let Some(time) = table.columns().iter().position(|c| c == "time")
        {
            for row in table.rows() {
                let Some(Value::Time(t)) = row.get(time) else {
                    panic!("{text:?}: a time column holds {row:?}");
                };
                assert!(
                    range.from <= *t && *t < range.to,
                    "{text:?} over {range:?} returned a point at {t}"
                );
            }
        }
    }
    // Db::points takes the same ranges through the library's other door,
    // and must give exactly the sample points inside them.
    for (a, account) in common::ACCOUNTS.iter().enumerate() {
        let expected: Vec<Point> = (0..24)
            .filter_map(|h| {
                let time = common::T0 + h * common::HOUR;
                let count = common::sample_count(a, 0, h)?;
                (range.from <= time && time < range.to).then_some(Point { time, count })
            })
            .collect();
        match db.points(account, "followers", range) {
            Ok(points) => assert_eq!(points, expected, "{account} over {range:?}"),
            Err(e) => panic!("reading {account} over {range:?} failed: {e}"),
        }
    }
}

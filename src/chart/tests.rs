//! The pictures, parsed back as XML: what is drawn for each type of
//! result, the falls by class, escaping, and the degenerate cases
//! (docs/query-language.md, rules Q60–Q65).

use super::*;
use crate::TimeRange;

const HOUR: i64 = 3_600_000;
const T0: i64 = 1_550_052_000_000; // 2019-02-13T10:00:00Z

/// Two days of hourly counts: adela_mae dips by half at hour 10 and is
/// back at hour 11 (a glitch), then falls by a fifth at hour 30 and stays
/// down (a purge); evada stays flat; a hostile name dips once and comes
/// back.
const HOSTILE: &str = "</text><script>alert(1)</script>&\u{1b}]0;x\"'";

fn database() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
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
        w.append(HOSTILE, "followers", t, if h == 5 { 1 } else { 100 })
            .unwrap();
    }
    w.commit().unwrap();
    (dir, db)
}

fn draw(db: &Db, text: &str) -> Option<String> {
    let query = Query::parse(text).unwrap();
    render(db, &query).unwrap().1
}

/// Parses the picture, failing the test when it is not well-formed XML.
fn parse(svg: &str) -> roxmltree::Document<'_> {
    roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("not XML: {e}\n{svg}"))
}

fn with_class<'a>(doc: &'a roxmltree::Document<'a>, class: &str) -> Vec<roxmltree::Node<'a, 'a>> {
    doc.descendants()
        .filter(|n| {
            n.attribute("class").is_some_and(|c| {
                c.split(' ').collect::<Vec<_>>() == class.split(' ').collect::<Vec<_>>()
            })
        })
        .collect()
}

#[test]
fn a_glitch_and_a_purge_are_shaded_apart() {
    // [Q60], [Q61]
    let (_dir, db) = database();
    let svg = draw(&db, r#"drop(followers{account="adela_mae"}, 5%, 1h)"#).unwrap();
    let doc = parse(&svg);
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    assert_eq!(with_class(&doc, "line").len(), 1);
    let glitches = with_class(&doc, "fall glitch");
    let purges = with_class(&doc, "fall purge");
    assert_eq!((glitches.len(), purges.len()), (1, 1), "{svg}");
    // The glitch comes first in time: its band lies left of the purge's.
    let x = |n: &roxmltree::Node| n.attribute("x").unwrap().parse::<f64>().unwrap();
    assert!(x(&glitches[0]) < x(&purges[0]));
    // The legend names both, with the window they were judged by.
    let legend: String = with_class(&doc, "legend")[0]
        .descendants()
        .filter_map(|n| n.text())
        .collect();
    assert!(legend.contains("came back within 1d"), "{legend}");
    assert!(legend.contains("not back within 1d"), "{legend}");
}

#[test]
fn the_recovery_window_of_the_query_judges_the_falls() {
    // [Q61]: within 1h the dip at hour 10 came back (at hour 11); the purge
    // never did. Within a window too short for the glitch, both are purges.
    let (_dir, db) = database();
    let svg = draw(
        &db,
        r#"not recovered_within(drop(followers{account="adela_mae"}, 5%, 1h), 30m)"#,
    )
    .unwrap();
    let doc = parse(&svg);
    assert_eq!(with_class(&doc, "fall purge").len(), 2);
    assert!(with_class(&doc, "fall glitch").is_empty());
    let svg = draw(&db, r#"recovered_within(drop(followers, 5%, 1h), 2h, 90%)"#).unwrap();
    assert!(svg.contains("within 2h, 90%"));
}

#[test]
fn a_series_result_is_drawn_with_the_default_falls() {
    // [Q60], [Q61]: a series of counts gets drop(SERIES, 5%, 1h), over 1d.
    let (_dir, db) = database();
    let svg = draw(&db, r#"followers{account=~"adela_mae|evada"}"#).unwrap();
    let doc = parse(&svg);
    assert_eq!(with_class(&doc, "line").len(), 2);
    assert_eq!(with_class(&doc, "fall glitch").len(), 1);
    assert_eq!(with_class(&doc, "fall purge").len(), 1);
}

#[test]
fn summarize_with_a_step_draws_bars_and_other_summaries_nothing() {
    // [Q60]
    let (_dir, db) = database();
    let svg = draw(&db, "summarize(drop(followers, 5%, 1h), 1h)").unwrap();
    let doc = parse(&svg);
    let bars = with_class(&doc, "bar");
    // Falls start at hours 4 (the hostile name), 9 (adela's glitch) and
    // 29 (adela's purge).
    assert_eq!(bars.len(), 3, "{svg}");
    for text in [
        "count(drop(followers, 5%, 1h))",
        "sum(drop(followers, 5%, 1h))",
        "summarize(drop(followers, 5%, 1h))",
        "change(followers, 1h)",
        "latest(change(followers, 1h))",
    ] {
        assert!(!can_draw(&Query::parse(text).unwrap()), "{text}");
        assert_eq!(draw(&db, text), None, "{text}");
    }
    for text in [
        "followers",
        "resample(followers, 1h)",
        "topk(1, drop(followers, 5%, 1h))",
        "summarize(not recovered_within(drop(followers, 5%, 1h), 1d), 1d)",
    ] {
        assert!(can_draw(&Query::parse(text).unwrap()), "{text}");
    }
}

#[test]
fn hostile_names_are_escaped() {
    // [Q65]
    let (_dir, db) = database();
    let svg = draw(&db, "drop(followers, 5%, 1h)").unwrap();
    let doc = parse(&svg);
    assert!(doc.descendants().all(|n| n.tag_name().name() != "script"));
    assert!(!svg.contains('\u{1b}'));
    // The name comes back out of the XML as text (shortened, control
    // character replaced).
    let texts: String = doc.descendants().filter_map(|n| n.text()).collect();
    assert!(
        texts.contains("</text><script>alert(1)</script>&\u{FFFD}"),
        "{texts}"
    );
}

#[test]
fn empty_results_draw_an_empty_frame() {
    // [Q64]
    let (_dir, db) = database();
    for text in [
        "drop(likes, 5%, 1h)",
        "followers{account=\"nobody\"}",
        "summarize(drop(likes, 5%, 1h), 1h)",
    ] {
        let svg = draw(&db, text).unwrap();
        let doc = parse(&svg);
        assert_eq!(with_class(&doc, "empty").len(), 1, "{text}");
    }
    // A range with no point in it.
    let query = Query::parse("followers")
        .unwrap()
        .range(TimeRange { from: 0, to: 1 });
    let svg = render(&db, &query).unwrap().1.unwrap();
    assert_eq!(with_class(&parse(&svg), "empty").len(), 1);
}

#[test]
fn one_point_is_a_dot_and_huge_counts_fit() {
    // [Q63], [Q64]
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let mut w = db.writer().unwrap();
    w.append("one", "followers", T0, 5).unwrap();
    w.append("huge", "followers", T0, i64::MAX as u64).unwrap();
    w.append("huge", "followers", T0 + HOUR, 0).unwrap();
    w.commit().unwrap();
    let svg = draw(&db, r#"followers{account="one"}"#).unwrap();
    assert_eq!(with_class(&parse(&svg), "line point").len(), 1);
    let svg = draw(&db, r#"followers{account="huge"}"#).unwrap();
    let doc = parse(&svg);
    assert_eq!(with_class(&doc, "fall purge").len(), 1);
    let axis: String = with_class(&doc, "axis")[0]
        .descendants()
        .filter_map(|n| n.text())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(axis.contains("10E"), "{axis}");
}

#[test]
fn many_series_are_capped_and_the_picture_says_so() {
    // [Q62]
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let mut w = db.writer().unwrap();
    for a in 0..20 {
        for h in 0..3 {
            w.append(
                &format!("acct{a:02}"),
                "followers",
                T0 + h * HOUR,
                100 + a as u64,
            )
            .unwrap();
        }
    }
    w.commit().unwrap();
    let svg = draw(&db, "followers").unwrap();
    let doc = parse(&svg);
    assert_eq!(with_class(&doc, "line").len(), MAX_LINES);
    assert!(svg.contains("8 of 20 series drawn"));
}

#[test]
fn long_lines_keep_their_dips() {
    // [Q62]: 20,000 points become at most 4,000 drawn, and the one-point
    // dip is among them.
    let points: Vec<(i64, i64)> = (0..20_000)
        .map(|i| (T0 + i * HOUR, if i == 12_345 { 1 } else { 1_000 }))
        .collect();
    let axis = axis::TimeAxis::new(T0, T0 + 19_999 * HOUR, 10);
    let drawn = draw::thin(&points, &axis);
    assert!(drawn.len() <= 2 * draw::MAX_COLUMNS);
    assert!(drawn.contains(&(T0 + 12_345 * HOUR, 1)));
    assert!(drawn.windows(2).all(|w| w[0].0 <= w[1].0));
}

#[test]
fn durations_and_percentages_read_as_written() {
    assert_eq!(duration_text(86_400_000), "1d");
    assert_eq!(duration_text(5_400_000), "1h30m");
    assert_eq!(duration_text(0), "0s");
    assert_eq!(percent_text(Percent::FULL), "100%");
    assert_eq!(
        percent_text(Percent {
            mantissa: 25,
            scale: 1
        }),
        "2.5%"
    );
    assert_eq!(
        percent_text(Percent {
            mantissa: 5,
            scale: 2
        }),
        "0.05%"
    );
}

#[test]
fn many_bars_are_capped_to_the_last() {
    // [Q62]
    let bars: Vec<Bar> = (0..600)
        .map(|i| Bar {
            bucket: T0 + i * 2 * HOUR,
            episodes: i,
            accounts: i,
            lost: i * 10,
        })
        .collect();
    let svg = draw::bars(&BarsChart {
        title: "summarize(drop(followers, 5%, 1h), 1h)".to_string(),
        step: "1h".to_string(),
        step_ms: HOUR,
        bars,
    });
    let doc = parse(&svg);
    let drawn = with_class(&doc, "bar");
    assert_eq!(drawn.len(), draw::MAX_BARS);
    assert!(svg.contains("the last 500 of 600 buckets drawn"));
    // The first bar drawn is bucket 100's.
    let tip = drawn[0].descendants().find_map(|n| n.text()).unwrap_or("");
    assert!(tip.contains(": 100 falls"), "{tip}");
}

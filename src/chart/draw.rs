//! The two pictures, from data already gathered: lines with their falls
//! shaded, and bars per bucket (docs/query-language.md, rules Q60–Q65).
//! Nothing here reads the database; `mod.rs` gathers, this draws.

use super::axis::{TimeAxis, ValueAxis};
use super::svg::{MAX_NAME_CHARS, Svg, num, shorten};
use crate::time::format_time;

/// At most this many series are drawn (rule Q62).
pub(crate) const MAX_LINES: usize = 8;
/// A line of more points than twice this is drawn as this many columns of
/// their lowest and highest values (rule Q62).
pub(crate) const MAX_COLUMNS: usize = 2_000;
/// At most this many bars are drawn: the last ones (rule Q62).
pub(crate) const MAX_BARS: usize = 500;

const WIDTH: f64 = 960.0;
const LEFT: f64 = 72.0;
const RIGHT: f64 = 24.0;
const TOP: f64 = 56.0;
const PLOT_HEIGHT: f64 = 300.0;
/// Room under the plot for two lines of time labels.
const TIME_LABELS: f64 = 44.0;
const LEGEND_ROW: f64 = 20.0;
/// A rough width of one character of the 12-unit font, to lay the legend
/// out without measuring text.
const CHAR_WIDTH: f64 = 7.0;

/// The colours of the lines, in order; chosen to stay apart from the
/// amber and red of the falls.
const PALETTE: [&str; MAX_LINES] = [
    "#1f77b4", "#2ca02c", "#9467bd", "#17becf", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
];
const GLITCH_FILL: &str = "#f5a623";
const PURGE_FILL: &str = "#d0021b";
const BAR_FILL: &str = "#4a7ab5";

/// A fall shaded on a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fall {
    pub start: i64,
    pub end: i64,
    pub before: i64,
    pub after: i64,
    /// Whether it came back within the recovery window: a glitch, else a
    /// purge (rule Q61).
    pub recovered: bool,
}

/// One series to draw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Line {
    pub account: String,
    pub metric: String,
    /// (time, value), times increasing.
    pub points: Vec<(i64, i64)>,
    pub falls: Vec<Fall>,
}

/// A picture of lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LinesChart {
    /// The query, as plain text.
    pub title: String,
    /// At most [`MAX_LINES`].
    pub lines: Vec<Line>,
    /// How many series the result had.
    pub total: usize,
    /// The recovery window the falls were judged by, like `1d` or
    /// `1d, 90%`.
    pub recovery: String,
}

/// One bucket of a `summarize(…, STEP)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bar {
    pub bucket: i64,
    pub episodes: i64,
    pub accounts: i64,
    pub lost: i64,
}

/// A picture of bars.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BarsChart {
    pub title: String,
    /// The step, as the query wrote it (`1h`).
    pub step: String,
    pub step_ms: i64,
    /// Sorted by bucket.
    pub bars: Vec<Bar>,
}

/// Where the plot area lies, and its two axes.
struct Frame {
    time: TimeAxis,
    value: ValueAxis,
    width: f64,
}

impl Frame {
    fn x(&self, t: i64) -> f64 {
        LEFT + self.time.fraction(i128::from(t)).clamp(0.0, 1.0) * self.width
    }

    fn y(&self, v: i64) -> f64 {
        TOP + (1.0 - self.value.fraction(i128::from(v)).clamp(0.0, 1.0)) * PLOT_HEIGHT
    }

    /// Grid lines, tick labels and the frame.
    fn draw_axes(&self, svg: &mut Svg) {
        svg.raw("<g class=\"axis\" fill=\"#444444\">\n");
        for v in self.value.ticks() {
            let y = TOP + (1.0 - self.value.fraction(v)) * PLOT_HEIGHT;
            svg.line(LEFT, y, LEFT + self.width, y, "stroke=\"#e4e4e4\"");
            svg.text(
                LEFT - 6.0,
                y + 4.0,
                "text-anchor=\"end\"",
                &self.value.label(v),
            );
        }
        let mut previous = None;
        let bottom = TOP + PLOT_HEIGHT;
        for t in self.time.ticks() {
            let x = LEFT + self.time.fraction(t) * self.width;
            svg.line(x, bottom, x, bottom + 4.0, "stroke=\"#888888\"");
            let (label, date) = self.time.label(t, previous);
            svg.text(x, bottom + 16.0, "text-anchor=\"middle\"", &label);
            if let Some(date) = date {
                svg.text(x, bottom + 30.0, "text-anchor=\"middle\"", &date);
            }
            previous = Some(t);
        }
        svg.rect(
            LEFT,
            TOP,
            self.width,
            PLOT_HEIGHT,
            "fill=\"none\" stroke=\"#888888\"",
            None,
        );
        svg.raw("</g>\n");
    }
}

/// The heading: the query, and a line under it.
fn heading(svg: &mut Svg, title: &str, subtitle: &str) {
    svg.text(
        LEFT,
        22.0,
        "class=\"title\" font-size=\"14\" font-weight=\"bold\"",
        &shorten(title, 110),
    );
    svg.text(LEFT, 40.0, "class=\"subtitle\" fill=\"#555555\"", subtitle);
}

/// A picture with no data: the heading and an empty frame (rule Q64).
fn empty(title: &str, subtitle: &str) -> String {
    let height = TOP + PLOT_HEIGHT + 20.0;
    let mut svg = Svg::new(WIDTH, height, title);
    heading(&mut svg, title, subtitle);
    let width = WIDTH - LEFT - RIGHT;
    svg.rect(
        LEFT,
        TOP,
        width,
        PLOT_HEIGHT,
        "class=\"axis\" fill=\"none\" stroke=\"#888888\"",
        None,
    );
    svg.text(
        LEFT + width / 2.0,
        TOP + PLOT_HEIGHT / 2.0,
        "class=\"empty\" text-anchor=\"middle\" fill=\"#888888\" font-size=\"16\"",
        "no data",
    );
    svg.finish()
}

/// A legend entry: a swatch of `fill` (with `opacity`) and a label.
struct Entry {
    class: &'static str,
    fill: &'static str,
    opacity: &'static str,
    label: String,
}

/// Lays entries out left to right, wrapping at the width; returns the
/// markup and the height it takes.
fn legend(entries: &[Entry], top: f64) -> (String, f64) {
    let mut svg = Svg::fragment();
    let (mut x, mut y) = (LEFT, top);
    for entry in entries {
        let width = 22.0 + entry.label.chars().count() as f64 * CHAR_WIDTH + 18.0;
        if x > LEFT && x + width > WIDTH - RIGHT {
            x = LEFT;
            y += LEGEND_ROW;
        }
        svg.rect(
            x,
            y - 10.0,
            14.0,
            12.0,
            &format!(
                "class=\"{}\" fill=\"{}\" fill-opacity=\"{}\"",
                entry.class, entry.fill, entry.opacity
            ),
            None,
        );
        svg.text(x + 20.0, y, "", &entry.label);
        x += width;
    }
    (
        format!("<g class=\"legend\">\n{}</g>\n", svg.into_markup()),
        y - top + LEGEND_ROW,
    )
}

/// The points of a line as drawn: all of them, or, for a long line, the
/// lowest and highest of each of [`MAX_COLUMNS`] equal time columns in the
/// order they occur, so that a short dip among many points still shows.
pub(crate) fn thin(points: &[(i64, i64)], axis: &TimeAxis) -> Vec<(i64, i64)> {
    if points.len() <= 2 * MAX_COLUMNS {
        return points.to_vec();
    }
    let column = |t: i64| {
        let f = axis.fraction(i128::from(t)).clamp(0.0, 1.0);
        ((f * MAX_COLUMNS as f64) as usize).min(MAX_COLUMNS - 1)
    };
    let mut out = Vec::with_capacity(2 * MAX_COLUMNS);
    let mut i = 0;
    while let Some(&first) = points.get(i) {
        let c = column(first.0);
        let (mut low, mut high) = (first, first);
        while let Some(&p) = points.get(i) {
            if column(p.0) != c {
                break;
            }
            if p.1 < low.1 {
                low = p;
            }
            if p.1 > high.1 {
                high = p;
            }
            i += 1;
        }
        if low.0 <= high.0 {
            out.push(low);
            if high != low {
                out.push(high);
            }
        } else {
            out.push(high);
            out.push(low);
        }
    }
    out
}

fn fall_tip(line: &Line, fall: &Fall, recovery: &str) -> String {
    let pct = if fall.before > 0 {
        let lost = i128::from(fall.before) - i128::from(fall.after);
        format!(" (-{:.2}%)", lost as f64 * 100.0 / fall.before as f64)
    } else {
        String::new()
    };
    format!(
        "{} {}: {} → {}{pct}, {} to {}; {}",
        line.account,
        line.metric,
        fall.before,
        fall.after,
        format_time(fall.start),
        format_time(fall.end),
        if fall.recovered {
            format!("glitch: came back within {recovery}")
        } else {
            format!("purge: did not come back within {recovery}")
        }
    )
}

/// The picture of lines with their falls shaded (rules Q60–Q62).
pub(crate) fn lines(chart: &LinesChart) -> String {
    let points = chart.lines.iter().flat_map(|l| l.points.iter());
    let (mut t_lo, mut t_hi, mut v_lo, mut v_hi) = (i64::MAX, i64::MIN, i64::MAX, i64::MIN);
    for &(t, v) in points {
        t_lo = t_lo.min(t);
        t_hi = t_hi.max(t);
        v_lo = v_lo.min(v);
        v_hi = v_hi.max(v);
    }
    let mut subtitle = if t_lo <= t_hi {
        format!("{} to {}", format_time(t_lo), format_time(t_hi))
    } else {
        String::new()
    };
    if chart.total > chart.lines.len() {
        subtitle.push_str(&format!(
            " · {} of {} series drawn",
            chart.lines.len(),
            chart.total
        ));
    }
    if t_lo > t_hi {
        return empty(&chart.title, &subtitle);
    }
    let width = WIDTH - LEFT - RIGHT;
    let frame = Frame {
        time: TimeAxis::new(t_lo, t_hi, 10),
        value: ValueAxis::new(v_lo, v_hi),
        width,
    };

    let mut entries: Vec<Entry> = Vec::new();
    for (i, line) in chart.lines.iter().enumerate() {
        entries.push(Entry {
            class: "key line",
            fill: PALETTE[i % PALETTE.len()],
            opacity: "1",
            label: format!(
                "{} · {}",
                shorten(&line.account, MAX_NAME_CHARS),
                shorten(&line.metric, MAX_NAME_CHARS)
            ),
        });
    }
    entries.push(Entry {
        class: "key glitch",
        fill: GLITCH_FILL,
        opacity: "0.45",
        label: format!("glitch: fell, came back within {}", chart.recovery),
    });
    entries.push(Entry {
        class: "key purge",
        fill: PURGE_FILL,
        opacity: "0.35",
        label: format!("purge: fell, not back within {}", chart.recovery),
    });
    let legend_top = TOP + PLOT_HEIGHT + TIME_LABELS + 12.0;
    let (legend, legend_height) = legend(&entries, legend_top);
    let height = legend_top + legend_height;

    let mut svg = Svg::new(WIDTH, height, &chart.title);
    heading(&mut svg, &chart.title, &subtitle);
    frame.draw_axes(&mut svg);

    svg.raw("<g class=\"falls\">\n");
    for line in &chart.lines {
        for fall in &line.falls {
            let (x0, x1) = (frame.x(fall.start), frame.x(fall.end));
            // A fall is at least two units wide, so that one between two
            // close points stays visible.
            let (x, w) = if x1 - x0 < 2.0 {
                (x0 - 1.0, 2.0)
            } else {
                (x0, x1 - x0)
            };
            let attrs = if fall.recovered {
                format!("class=\"fall glitch\" fill=\"{GLITCH_FILL}\" fill-opacity=\"0.45\"")
            } else {
                format!("class=\"fall purge\" fill=\"{PURGE_FILL}\" fill-opacity=\"0.35\"")
            };
            svg.rect(
                x,
                TOP,
                w,
                PLOT_HEIGHT,
                &attrs,
                Some(&fall_tip(line, fall, &chart.recovery)),
            );
        }
    }
    svg.raw("</g>\n");

    for (i, line) in chart.lines.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let drawn = thin(&line.points, &frame.time);
        let name = format!("{} {}", line.account, line.metric);
        match drawn.as_slice() {
            [] => {}
            [(t, v)] => {
                svg.raw(&format!(
                    "<circle class=\"line point\" cx=\"{}\" cy=\"{}\" r=\"3\" fill=\"{colour}\">",
                    num(frame.x(*t)),
                    num(frame.y(*v))
                ));
                svg.raw(&format!(
                    "<title>{}</title></circle>\n",
                    super::svg::escape(&name)
                ));
            }
            many => {
                let mut coords = String::with_capacity(many.len() * 12);
                for (k, (t, v)) in many.iter().enumerate() {
                    if k > 0 {
                        coords.push(' ');
                    }
                    coords.push_str(&num(frame.x(*t)));
                    coords.push(',');
                    coords.push_str(&num(frame.y(*v)));
                }
                svg.raw(&format!(
                    "<polyline class=\"line\" fill=\"none\" stroke=\"{colour}\" \
                     stroke-width=\"1.5\" stroke-linejoin=\"round\" points=\"{coords}\">\
                     <title>{}</title></polyline>\n",
                    super::svg::escape(&name)
                ));
            }
        }
    }
    svg.raw(&legend);
    svg.finish()
}

/// The picture of a `summarize(…, STEP)`: one bar per bucket (rule Q60).
pub(crate) fn bars(chart: &BarsChart) -> String {
    let total = chart.bars.len();
    let step = chart.step_ms.max(1);
    // The last MAX_BARS buckets that hold a row (rule Q62); the start is
    // at most the length, so the slice cannot panic.
    let shown = &chart.bars[total.saturating_sub(MAX_BARS)..];
    let mut subtitle = match (shown.first(), shown.last()) {
        (Some(first), Some(last)) => format!(
            "{} to {} · ",
            format_time(first.bucket),
            format_time(last.bucket.saturating_add(step))
        ),
        _ => String::new(),
    };
    subtitle.push_str(&format!(
        "falls (episodes) per {} bucket, by the time each fall started",
        chart.step
    ));
    if shown.len() < total {
        subtitle.push_str(&format!(
            " · the last {} of {} buckets drawn",
            shown.len(),
            total
        ));
    }
    let (Some(first), Some(last)) = (shown.first(), shown.last()) else {
        return empty(&chart.title, &subtitle);
    };
    let end = last.bucket.saturating_add(step);
    let top = shown.iter().map(|b| b.episodes).max().unwrap_or(0);
    let width = WIDTH - LEFT - RIGHT;
    let frame = Frame {
        // No more ticks than buckets, so that hourly bars get hourly ticks.
        time: TimeAxis::new(
            first.bucket,
            end,
            ((i128::from(end) - i128::from(first.bucket)) / i128::from(step) + 1).clamp(2, 10),
        ),
        value: ValueAxis::new(0, top.max(1)),
        width,
    };
    let height = TOP + PLOT_HEIGHT + TIME_LABELS + 8.0;
    let mut svg = Svg::new(WIDTH, height, &chart.title);
    heading(&mut svg, &chart.title, &subtitle);
    frame.draw_axes(&mut svg);
    svg.raw("<g class=\"bars\">\n");
    let zero = frame.y(0);
    for bar in shown {
        let x0 = frame.x(bar.bucket);
        let x1 = frame.x(bar.bucket.saturating_add(step));
        // A bar stays visible however many steps the axis spans.
        let w = ((x1 - x0) * 0.8).max(3.0);
        let y = frame.y(bar.episodes);
        svg.rect(
            x0 + (x1 - x0 - w) / 2.0,
            y,
            w,
            zero - y,
            &format!("class=\"bar\" fill=\"{BAR_FILL}\""),
            Some(&format!(
                "{}: {} falls, {} accounts, {} lost",
                format_time(bar.bucket),
                bar.episodes,
                bar.accounts,
                bar.lost
            )),
        );
    }
    svg.raw("</g>\n");
    svg.finish()
}

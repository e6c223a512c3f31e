//! A one-line picture of one series, drawn under a result that holds the
//! points of exactly one (account, metric).
//!
//! The picture exists to tell a purge from a glitch at a glance: a purge is
//! a step down that stays down, a glitch a dip that comes back. So when
//! points are squeezed into fewer columns each column shows the *minimum*
//! of its points (an average or a sample would hide a one-hour dip among a
//! hundred), and a line of marks under it shows where the falls that
//! `drop()` finds end: `^` for those that recovered, `▼` for those that did
//! not.

use crate::time::format_time;

/// The falls marked under the line are `drop(SERIES, DROP_THRESHOLD,
/// DROP_WINDOW)`: the defaults the documentation uses throughout.
pub(super) const DROP_THRESHOLD: &str = "5%";
/// See [`DROP_THRESHOLD`].
pub(super) const DROP_WINDOW: &str = "1h";
/// A fall that regains what it lost within this long is a glitch.
pub(super) const RECOVERY_WINDOW: &str = "1d";

/// The glyphs from lowest to highest.
const LEVELS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
/// Marks the end of a fall that recovered.
const GLITCH_MARK: char = '^';
/// Marks the end of a fall that did not recover.
const PURGE_MARK: char = '▼';
/// Columns of indentation before the line, as under a table.
const INDENT: &str = "  ";

/// A fall `drop()` found in the series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Fall {
    /// When the fall ended, in milliseconds: where its mark goes.
    pub end: i64,
    /// Whether the count came back within [`RECOVERY_WINDOW`].
    pub recovered: bool,
}

/// The picture of one series as lines of text, each ending with a newline,
/// at most `width` columns wide; empty when there are fewer than two points
/// (a line of one glyph says nothing).
///
/// `points` are (time in milliseconds, value) in time order; `title` names
/// the series.
pub(super) fn draw(title: &str, points: &[(i64, i64)], falls: &[Fall], width: usize) -> String {
    let (Some(&(first, _)), Some(&(last, _))) = (points.first(), points.last()) else {
        return String::new();
    };
    if points.len() < 2 {
        return String::new();
    }
    let columns = width.saturating_sub(INDENT.len()).clamp(1, slots(points));
    let buckets = Buckets::new(first, last, columns);
    let mut minima: Vec<Option<i64>> = vec![None; columns];
    for &(time, value) in points {
        let slot = &mut minima[buckets.column(time)];
        *slot = Some(slot.map_or(value, |m| m.min(value)));
    }
    let low = points.iter().map(|p| p.1).min().unwrap_or(0);
    let high = points.iter().map(|p| p.1).max().unwrap_or(0);

    let mut out = format!(
        "{title}: {} .. {}, min {low}, max {high}\n{INDENT}",
        format_time(first),
        format_time(last)
    );
    // Scale between the lowest and highest column, which is what is drawn.
    let drawn_low = minima.iter().flatten().copied().min().unwrap_or(low);
    let drawn_high = minima.iter().flatten().copied().max().unwrap_or(high);
    out.extend(
        minima
            .iter()
            .map(|m| m.map_or(' ', |v| level(v, drawn_low, drawn_high))),
    );
    out.push('\n');

    let mut marks = vec![' '; columns];
    for fall in falls.iter().filter(|f| (first..=last).contains(&f.end)) {
        let mark = &mut marks[buckets.column(fall.end)];
        // A purge is the news; a glitch beside it in the same column is not.
        if *mark != PURGE_MARK {
            *mark = if fall.recovered {
                GLITCH_MARK
            } else {
                PURGE_MARK
            };
        }
    }
    if marks.iter().any(|&m| m != ' ') {
        out.push_str(INDENT);
        out.push_str(marks.iter().collect::<String>().trim_end());
        out.push('\n');
        out.push_str(&legend(&marks));
    }
    out
}

/// Explains the marks that appear, and only those.
fn legend(marks: &[char]) -> String {
    let mut out = format!("{INDENT}falls of {DROP_THRESHOLD} in {DROP_WINDOW}:");
    if marks.contains(&GLITCH_MARK) {
        out.push_str(&format!(
            "  {GLITCH_MARK} back within {RECOVERY_WINDOW} (glitch)"
        ));
    }
    if marks.contains(&PURGE_MARK) {
        out.push_str(&format!("  {PURGE_MARK} not back (purge)"));
    }
    out.push('\n');
    out
}

/// The glyph for `value` on a scale from `low` to `high`, rounded to the
/// nearest level; a flat series sits in the middle.
fn level(value: i64, low: i64, high: i64) -> char {
    if high <= low {
        return LEVELS[LEVELS.len() / 2 - 1];
    }
    let top = (LEVELS.len() - 1) as i128;
    let range = i128::from(high) - i128::from(low);
    let offset = i128::from(value) - i128::from(low);
    let index = (offset * top * 2 + range) / (range * 2);
    LEVELS[index.clamp(0, top) as usize]
}

/// How many columns the series needs to give each point its own: one per
/// step of the shortest interval between two points. A regular series needs
/// one per point; one with a gap needs more, so the gap shows.
fn slots(points: &[(i64, i64)]) -> usize {
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return 1;
    };
    let step = points
        .windows(2)
        .map(|w| i128::from(w[1].0) - i128::from(w[0].0))
        .filter(|&d| d > 0)
        .min()
        .unwrap_or(1);
    let slots = (i128::from(last.0) - i128::from(first.0)) / step + 1;
    usize::try_from(slots).unwrap_or(usize::MAX)
}

/// Cuts the time from the first to the last point into equal columns, so
/// that a gap in the data shows as a gap in the line.
struct Buckets {
    first: i64,
    /// The time covered, plus one so that the last point falls in the last
    /// column rather than one past it.
    span: i128,
    columns: usize,
}

impl Buckets {
    fn new(first: i64, last: i64, columns: usize) -> Buckets {
        Buckets {
            first,
            span: i128::from(last) - i128::from(first) + 1,
            columns,
        }
    }

    fn column(&self, time: i64) -> usize {
        let offset = (i128::from(time) - i128::from(self.first)).max(0);
        let column = offset * self.columns as i128 / self.span;
        (column as usize).min(self.columns - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;

    fn hourly(values: &[i64]) -> Vec<(i64, i64)> {
        values
            .iter()
            .enumerate()
            .map(|(i, &v)| (i as i64 * HOUR, v))
            .collect()
    }

    fn line(picture: &str, n: usize) -> &str {
        picture.lines().nth(n).unwrap_or("")
    }

    #[test]
    fn one_column_per_point_when_they_fit() {
        let picture = draw("s", &hourly(&[0, 1, 2, 3, 4, 5, 6, 7]), &[], 80);
        assert_eq!(line(&picture, 1), "  ▁▂▃▄▅▆▇█");
        assert!(line(&picture, 0).contains("min 0, max 7"), "{picture}");
        assert_eq!(picture.lines().count(), 2, "no marks, no legend");
    }

    #[test]
    fn squeezing_keeps_the_minimum_so_a_dip_stays_visible() {
        let mut values = vec![100; 400];
        values[123] = 0;
        let picture = draw("s", &hourly(&values), &[], 42);
        let drawn = line(&picture, 1).trim_start();
        assert_eq!(drawn.chars().count(), 40);
        assert_eq!(drawn.chars().filter(|&c| c == '▁').count(), 1);
        assert_eq!(drawn.chars().filter(|&c| c == '█').count(), 39);
    }

    #[test]
    fn a_gap_in_time_is_a_gap_in_the_line() {
        let points = vec![(0, 5), (HOUR, 6), (9 * HOUR, 7)];
        let picture = draw("s", &points, &[], 12);
        assert_eq!(line(&picture, 1), "  ▁▅       █");
    }

    #[test]
    fn marks_sit_under_the_end_of_each_fall() {
        let values = [100, 100, 10, 100, 100, 50, 50, 50];
        let falls = [
            Fall {
                end: 2 * HOUR,
                recovered: true,
            },
            Fall {
                end: 5 * HOUR,
                recovered: false,
            },
        ];
        let picture = draw("s", &hourly(&values), &falls, 80);
        assert_eq!(line(&picture, 1), "  ██▁██▄▄▄");
        assert_eq!(line(&picture, 2), "    ^  ▼");
        assert!(line(&picture, 3).contains("glitch"));
        assert!(line(&picture, 3).contains("purge"));
    }

    #[test]
    fn a_purge_wins_a_shared_column() {
        let values = vec![10; 100];
        let falls = [
            Fall {
                end: 50 * HOUR,
                recovered: false,
            },
            Fall {
                end: 50 * HOUR + 1,
                recovered: true,
            },
        ];
        let picture = draw("s", &hourly(&values), &falls, 12);
        assert_eq!(line(&picture, 2).trim(), "▼");
        assert!(!line(&picture, 3).contains("glitch"));
    }

    #[test]
    fn flat_and_tiny_series() {
        assert_eq!(line(&draw("s", &hourly(&[3, 3, 3]), &[], 80), 1), "  ▄▄▄");
        assert_eq!(draw("s", &hourly(&[3]), &[], 80), "");
        assert_eq!(draw("s", &[], &[], 80), "");
        // Extremes of i64 do not overflow the scale.
        let picture = draw("s", &hourly(&[i64::MIN, i64::MAX]), &[], 80);
        assert_eq!(line(&picture, 1), "  ▁█");
    }
}

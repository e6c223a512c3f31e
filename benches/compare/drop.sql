-- drop(followers, 5%, 1h) in DuckDB SQL, with tally's exact semantics
-- (docs/query-language.md [Q20a]-[Q20e]), over the table that
-- `CREATE TABLE snapshots AS SELECT * FROM read_csv(...)` makes of
-- `tally generate` output (time, account, followers, following).
-- Prints the rows exactly as `tally query --format csv` does.
WITH pts AS (
    -- One series per account: the points that have a followers count.
    SELECT account, 'followers' AS metric, epoch_ms(time) AS t, followers AS v
    FROM snapshots
    WHERE followers IS NOT NULL
),
win AS (
    SELECT account, metric, t, v,
           -- [Q20a]/[Q20b] the window is t_i - 1h <= t_j < t_i (times are
           -- whole milliseconds, so "< t_i" is "<= t_i - 1"); the peak is
           -- the largest value, ties to the latest time: max() of a
           -- (value, time) struct compares value first, then time.
           max(struct_pack(v := v, t := t)) OVER (
               PARTITION BY account, metric ORDER BY t
               RANGE BETWEEN 3600000 PRECEDING AND 1 PRECEDING) AS peak,
           -- position of the point in its series, for [Q20d]
           row_number() OVER (PARTITION BY account, metric ORDER BY t) AS pos
    FROM pts
),
qual AS (
    -- [Q20c] loss > 0 and 100 * loss >= 5 * peak, in integers.
    SELECT account, metric, t, v, pos, peak.v AS peak_v, peak.t AS peak_t
    FROM win
    WHERE peak IS NOT NULL
      AND peak.v > v
      AND 100 * (peak.v - v) >= 5 * peak.v
),
runs AS (
    -- [Q20d] gaps and islands: consecutive qualifying points share
    -- pos - (their rank among the qualifying points).
    SELECT *, pos - row_number() OVER (PARTITION BY account, metric ORDER BY t) AS run
    FROM qual
),
episodes AS (
    SELECT account, metric,
           arg_min(peak_t, t) AS start_ms,      -- the first point's peak
           arg_min(peak_v, t) AS before,
           min(struct_pack(v := v, t := t)) AS trough  -- smallest, ties earliest
    FROM runs
    GROUP BY account, metric, run
),
drops AS (
    SELECT account, metric, start_ms, trough.t AS end_ms, before,
           trough.v AS after, before - trough.v AS lost,
           -- 100 * lost / before in hundredths, rounded half away from zero
           -- (lost > 0), exactly in integers.
           CASE WHEN before = 0 THEN 0
                ELSE (lost * 20000 + before) // (2 * before) END AS pct100
    FROM episodes
)
SELECT account, metric,
       CASE WHEN start_ms % 1000 = 0
            THEN strftime(make_timestamp(start_ms * 1000), '%Y-%m-%dT%H:%M:%SZ')
            ELSE strftime(make_timestamp(start_ms * 1000), '%Y-%m-%dT%H:%M:%S.%gZ') END AS start,
       CASE WHEN end_ms % 1000 = 0
            THEN strftime(make_timestamp(end_ms * 1000), '%Y-%m-%dT%H:%M:%SZ')
            ELSE strftime(make_timestamp(end_ms * 1000), '%Y-%m-%dT%H:%M:%S.%gZ') END AS "end",
       before, after, lost,
       printf('%d.%02d', pct100 // 100, pct100 % 100) AS lost_pct
FROM drops
ORDER BY account, metric, start_ms, end_ms;

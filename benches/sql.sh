#!/usr/bin/env bash
# benches/sql.sh — `tally sql` (the `datafusion` feature) on the medium
# bench data: the two targets of issue 12.
#
#   benches/sql.sh            (knobs below, in the environment)
#
# What it does:
#   1. installs DuckDB from PyPI into target/compare/venv when it is missing
#      (the venv benches/compare.sh and benches/export.sh use), and builds
#      tally in release with `--features datafusion`;
#   2. generates the medium bench data once (ACCOUNTS x HOURS hourly
#      snapshots, two metrics, `tally generate`, seeded) and imports it into
#      the database benches/export.sh uses, under target/export-bench/; and
#      loads the same points into a DuckDB database file (its own format),
#      through a `tally export` to Parquet, once;
#   3. target 1, RUNS rounds: `tally query 'count(drop(followers, 5%, 1h))'`
#      against `tally sql "SELECT count(*) FROM tally('drop(followers, 5%,
#      1h)')"`, each a whole process (wall clock: start, opening the
#      database, the query, printing); the two counts must be equal;
#   4. target 2, RUNS rounds: `SELECT account, max(value) FROM points WHERE
#      metric = 'followers' GROUP BY account` by `tally sql` (a whole
#      process) and by DuckDB over its own file (timed inside Python around
#      execute + fetch only, so DuckDB is not charged for its process start
#      or for opening the file, and tally is); the two answers must be
#      equal, row for row;
#   5. prints the medians, the ratios and the targets met or missed.
#
# Knobs: ACCOUNTS (35000), HOURS (720), SEED (20190213), RUNS (5).
#
# A measurement tool, not a test: nothing runs it from `cargo test`, and it
# asserts no time. Any wrong answer: exit status 1.

set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$ROOT/target/export-bench
TALLY=$ROOT/target/release/tally
PY=$ROOT/target/compare/venv/bin/python
TIMED=$ROOT/benches/compare/timed.py
ACCOUNTS=${ACCOUNTS:-35000}
HOURS=${HOURS:-720}
SEED=${SEED:-20190213}
RUNS=${RUNS:-5}

log() { echo "sql.sh: $*" >&2; }
die() {
    log "error: $*"
    exit 1
}

# --- 1. tools and 2. data (benches/lib/medium.sh) ---------------------------

# shellcheck source=benches/lib/medium.sh
source "$ROOT/benches/lib/medium.sh"
medium_tools datafusion
medium_db

DUCK=$WORK/medium-$ACCOUNTS-$HOURS-$SEED.duckdb
if [[ ! -f $DUCK ]]; then
    log "loading the same points into DuckDB's own format ($DUCK)"
    rm -rf "$WORK/sql-parquet"
    "$TALLY" --db "$DB" export --out "$WORK/sql-parquet" --partitions 4 >&2
    "$PY" - "$DUCK.tmp" "$WORK/sql-parquet" <<'EOF'
import sys, duckdb
con = duckdb.connect(sys.argv[1])
con.execute(f"CREATE TABLE points AS SELECT * FROM read_parquet('{sys.argv[2]}/*.parquet')")
con.execute("CHECKPOINT")
con.close()
EOF
    mv "$DUCK.tmp" "$DUCK"
    rm -rf "$WORK/sql-parquet"
fi

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
wall() { "$PY" "$TIMED" "$1" "${@:2}" | cut -d' ' -f1; }

# The revision measured: what was built, before anything can move HEAD.
TALLY_REV=$(git -C "$ROOT" rev-parse --short HEAD)
git -C "$ROOT" diff --quiet HEAD -- src Cargo.toml Cargo.lock || TALLY_REV="$TALLY_REV (+ uncommitted changes)"

# --- 3. target 1: tally('…') against tally query ------------------------------

Q1_QUERY='count(drop(followers, 5%, 1h))'
Q1_SQL="SELECT count(*) FROM tally('drop(followers, 5%, 1h)')"
QUERY_TIMES=()
SQL_TIMES=()
for run in $(seq "$RUNS"); do
    QUERY_TIMES+=("$(wall "$WORK/q1-query.csv" "$TALLY" --db "$DB" query --format csv "$Q1_QUERY")")
    SQL_TIMES+=("$(wall "$WORK/q1-sql.csv" "$TALLY" --db "$DB" sql --format csv "$Q1_SQL")")
    log "target 1, run $run: tally query ${QUERY_TIMES[-1]} s, tally sql ${SQL_TIMES[-1]} s"
done
Q1_COUNT=$(tail -1 "$WORK/q1-query.csv")
[[ $(tail -1 "$WORK/q1-sql.csv") == "$Q1_COUNT" ]] ||
    die "tally sql counted $(tail -1 "$WORK/q1-sql.csv"), tally query $Q1_COUNT"
Q1_QUERY_MEDIAN=$(median "${QUERY_TIMES[@]}")
Q1_SQL_MEDIAN=$(median "${SQL_TIMES[@]}")
Q1_RATIO=$(awk -v a="$Q1_SQL_MEDIAN" -v b="$Q1_QUERY_MEDIAN" 'BEGIN { printf "%.2f", a / b }')

# --- 4. target 2: a scan of points against DuckDB -----------------------------

Q2="SELECT account, max(value) FROM points WHERE metric = 'followers' GROUP BY account"
TALLY_TIMES=()
DUCK_TIMES=()
for run in $(seq "$RUNS"); do
    TALLY_TIMES+=("$(wall "$WORK/q2-tally.csv" "$TALLY" --db "$DB" sql --format csv "$Q2")")
    DUCK_TIMES+=("$("$PY" - "$DUCK" "$Q2" "$WORK/q2-duck.csv" <<'EOF'
import csv, sys, time, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
start = time.perf_counter()
rows = con.execute(sys.argv[2]).fetchall()
seconds = time.perf_counter() - start
with open(sys.argv[3], "w", newline="") as out:
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["account", "max"])
    w.writerows(rows)
print(f"{seconds:.6f}")
EOF
)")
    log "target 2, run $run: tally sql ${TALLY_TIMES[-1]} s, DuckDB ${DUCK_TIMES[-1]} s"
done
# The same accounts with the same maxima (the header names differ, the
# order is free).
diff <(tail -n +2 "$WORK/q2-tally.csv" | sort) <(tail -n +2 "$WORK/q2-duck.csv" | sort) >/dev/null ||
    die "tally sql and DuckDB give different maxima ($WORK/q2-tally.csv, $WORK/q2-duck.csv)"
Q2_ROWS=$(($(wc -l <"$WORK/q2-tally.csv") - 1))
Q2_TALLY_MEDIAN=$(median "${TALLY_TIMES[@]}")
Q2_DUCK_MEDIAN=$(median "${DUCK_TIMES[@]}")
Q2_RATIO=$(awk -v a="$Q2_TALLY_MEDIAN" -v b="$Q2_DUCK_MEDIAN" 'BEGIN { printf "%.2f", a / b }')

met() { awk -v r="$1" -v limit="$2" 'BEGIN { print (r <= limit ? "met" : "MISSED") }'; }
cat <<EOF

tally sql on $POINTS points ($ACCOUNTS accounts x $HOURS hours, seed $SEED), $RUNS runs each, medians:

| measurement | tally sql | reference | ratio | target |
|---|---|---|---|---|
| \`$Q1_SQL\` vs \`tally query '$Q1_QUERY'\` ($Q1_COUNT falls) | $Q1_SQL_MEDIAN s | $Q1_QUERY_MEDIAN s | $Q1_RATIO | <= 1.20: $(met "$Q1_RATIO" 1.2) |
| \`$Q2\` vs DuckDB on its own file ($Q2_ROWS rows, same answer) | $Q2_TALLY_MEDIAN s | $Q2_DUCK_MEDIAN s | $Q2_RATIO | <= 1.00: $(met "$Q2_RATIO" 1.0) |

runs (s): tally query ${QUERY_TIMES[*]}; tally sql ${SQL_TIMES[*]}
runs (s): tally sql scan ${TALLY_TIMES[*]}; DuckDB ${DUCK_TIMES[*]}
tally's times are whole processes; DuckDB's are execute + fetch inside Python.
tally $TALLY_REV, DuckDB $("$PY" -c 'import duckdb; print(duckdb.__version__)'),
$(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end
command: ACCOUNTS=$ACCOUNTS HOURS=$HOURS RUNS=$RUNS benches/sql.sh
EOF

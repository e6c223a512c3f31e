#!/usr/bin/env bash
# benches/export.sh — `tally export` (Parquet, zstd) of the medium bench data,
# read back by DuckDB.
#
#   benches/export.sh            (knobs below, in the environment)
#
# What it does:
#   1. installs DuckDB from PyPI into target/compare/venv when it is missing
#      (the venv benches/compare.sh uses), and builds tally in release with
#      `--features arrow`;
#   2. generates the medium bench data once (ACCOUNTS x HOURS hourly
#      snapshots, two metrics, `tally generate`, seeded) and imports it into
#      a database under target/export-bench/;
#   3. runs `tally export --out DIR --partitions PARTITIONS` RUNS times into
#      a fresh folder each time, timing each whole command (wall clock:
#      process start, opening the database, writing and syncing every
#      file), and prints points/s for each run and their median;
#   4. checks the last export with DuckDB: per metric, the row count and
#      sum(value) equal tally's own count(METRIC) and sum(METRIC); every
#      account is in exactly one file. Any mismatch: exit status 1.
#
# Knobs: ACCOUNTS (35000), HOURS (720), SEED (20190213), RUNS (3),
# PARTITIONS (8).
#
# Everything it writes lives under target/export-bench/. A measurement
# tool, not a test: nothing runs it from `cargo test`, and it asserts no
# time.

set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$ROOT/target/export-bench
TALLY=$ROOT/target/release/tally
PY=$ROOT/target/compare/venv/bin/python
ACCOUNTS=${ACCOUNTS:-35000}
HOURS=${HOURS:-720}
SEED=${SEED:-20190213}
RUNS=${RUNS:-3}
PARTITIONS=${PARTITIONS:-8}

log() { echo "export.sh: $*" >&2; }
die() {
    log "error: $*"
    exit 1
}

# --- 1. tools and 2. data (benches/lib/medium.sh) ---------------------------

# shellcheck source=benches/lib/medium.sh
source "$ROOT/benches/lib/medium.sh"
medium_tools arrow
medium_db

# --- 3. exports -------------------------------------------------------------

# The revision measured: what was built, before anything can move HEAD.
TALLY_REV=$(git -C "$ROOT" rev-parse --short HEAD)
git -C "$ROOT" diff --quiet HEAD -- src Cargo.toml Cargo.lock || TALLY_REV="$TALLY_REV (+ uncommitted changes)"

RATES=()
CPUS=()
OUT=""
TIMEFORMAT='%R %U %S'
for run in $(seq "$RUNS"); do
    OUT=$WORK/out-$run
    rm -rf "$OUT"
    { time "$TALLY" --db "$DB" export --out "$OUT" --partitions "$PARTITIONS" >"$WORK/export-$run.log"; } 2>"$WORK/time-$run"
    read -r seconds user sys <"$WORK/time-$run"
    rate=$(awk -v p="$POINTS" -v s="$seconds" 'BEGIN { printf "%.2f", p / s / 1e6 }')
    cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')
    RATES+=("$rate")
    CPUS+=("$cpu")
    log "run $run: $seconds s wall, $cpu s CPU, $rate M points/s ($(cat "$WORK/export-$run.log"))"
    if [[ $run -lt $RUNS ]]; then
        rm -rf "$OUT"
    fi
done
MEDIAN=$(printf '%s\n' "${RATES[@]}" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
BYTES=$(du -sb "$OUT" | cut -f1)

# --- 4. DuckDB reads it back --------------------------------------------------

TALLY_TOTALS=$WORK/tally-totals.tsv
: >"$TALLY_TOTALS"
while read -r metric; do
    [[ -n $metric ]] || continue
    count=$("$TALLY" --db "$DB" query --format csv "count($metric)" | tail -1)
    sum=$("$TALLY" --db "$DB" query --format csv "sum($metric)" | tail -1)
    printf '%s\t%s\t%s\n' "$metric" "$count" "$sum" >>"$TALLY_TOTALS"
done < <("$PY" - "$OUT" <<'EOF'
import sys, duckdb
rows = duckdb.sql(f"SELECT DISTINCT metric FROM read_parquet('{sys.argv[1]}/*.parquet') ORDER BY 1").fetchall()
print("\n".join(r[0] for r in rows))
EOF
)
"$PY" - "$OUT" "$TALLY_TOTALS" <<'EOF' || die "DuckDB's reading differs from tally's"
import sys, duckdb
out, totals = sys.argv[1], sys.argv[2]
files = f"read_parquet('{out}/*.parquet', filename = true)"
duck = {m: (c, s) for m, c, s in duckdb.sql(
    f"SELECT metric, count(*), sum(value) FROM {files} GROUP BY metric").fetchall()}
want = {}
for line in open(totals):
    m, c, s = line.rstrip("\n").split("\t")
    want[m] = (int(c), int(s))
split = duckdb.sql(
    f"SELECT count(*) FROM (SELECT account FROM {files} GROUP BY account "
    "HAVING count(DISTINCT filename) > 1)").fetchall()[0][0]
types = duckdb.sql(f"DESCRIBE SELECT * FROM {files}").fetchall()
ok = duck == want and split == 0 and want
print("| metric | tally count | DuckDB count | tally sum(value) | DuckDB sum(value) |")
print("|---|---|---|---|---|")
for m in sorted(set(duck) | set(want)):
    print(f"| {m} | {want.get(m, ('-', '-'))[0]} | {duck.get(m, ('-', '-'))[0]} "
          f"| {want.get(m, ('-', '-'))[1]} | {duck.get(m, ('-', '-'))[1]} |")
print(f"accounts in more than one file: {split}")
print("DuckDB's types: " + ", ".join(f"{t[0]} {t[1]}" for t in types if t[0] != "filename"))
print("same rows: " + ("yes" if ok else "NO"))
sys.exit(0 if ok else 1)
EOF

cat <<EOF

tally export of $POINTS points ($ACCOUNTS accounts x $HOURS hours, seed $SEED),
--partitions $PARTITIONS, $(du -sh "$OUT" | cut -f1) on disk ($BYTES bytes):
runs (M points/s): ${RATES[*]}; median $MEDIAN M points/s (target: >= 20)
CPU seconds (user + system) of the runs: ${CPUS[*]}
tally $TALLY_REV, DuckDB $("$PY" -c 'import duckdb; print(duckdb.__version__)'),
$(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end
command: ACCOUNTS=$ACCOUNTS HOURS=$HOURS RUNS=$RUNS PARTITIONS=$PARTITIONS benches/export.sh
EOF

#!/usr/bin/env bash
# benches/hourly.sh — the workload users have: one `tally import` per hourly
# snapshot file, with the automatic merging of docs/format.md ("Merging").
#
#   benches/hourly.sh [ACCOUNTS [HOURS]]      (default: 1000000 168)
#
# What it does:
#   1. builds tally in release and generates `tally generate --accounts
#      ACCOUNTS --hours HOURS` (one CSV file per hour) under
#      target/hourly/ACCOUNTS-HOURS/, once;
#   2. imports the files one `tally import` each into a new database, and
#      for each import records its wall seconds and peak RSS
#      (/usr/bin/time), the bytes the process wrote to storage (the kernel's
#      write_bytes, which counts segments, dictionary and manifest alike,
#      merges included) and the segment count afterwards;
#   3. imports the same files as one folder into a second database
#      (`tally import DIR`, merging after it), and copies the hourly
#      database into a third that it compacts fully;
#   4. times `count(drop(followers, 5%, 1h))` and
#      `count(recovered_within(drop(followers, 5%, 1h), 1d))` on the hourly
#      and the compacted database in turn (RUNS rounds, median), and checks
#      that both give the same rows;
#   5. prints a Markdown summary and saves it, with the per-import table,
#      under target/hourly/.
#
# Knobs (environment): RUNS (default 5), SEED (default 20190213), KEEP=1 to
# reuse the generated files. A measurement tool, not a test.

set -euo pipefail

ACCOUNTS=${1:-1000000}
HOURS=${2:-168}
RUNS=${RUNS:-5}
SEED=${SEED:-20190213}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TALLY=$ROOT/target/release/tally
WORK=$ROOT/target/hourly/$ACCOUNTS-$HOURS
GEN=$WORK/gen
HOURLY_DB=$WORK/hourly.db
FOLDER_DB=$WORK/folder.db
COMPACT_DB=$WORK/compacted.db
PER_IMPORT=$WORK/per-import.tsv
REPORT=$WORK/report.md

command -v /usr/bin/time >/dev/null || apt-get install -y time >/dev/null
(cd "$ROOT" && cargo build --release --locked --quiet)
mkdir -p "$WORK"
if [ ! -d "$GEN/snapshots" ]; then
    "$TALLY" generate --seed "$SEED" --accounts "$ACCOUNTS" --hours "$HOURS" --out "$GEN" >/dev/null
fi

# Runs a command under /usr/bin/time in a shell whose /proc io counters,
# read after the command is reaped, include the command's own.
measure() { # OUT_PREFIX cmd...
    local prefix=$1
    shift
    /usr/bin/time -f "%e %M" -o "$prefix.time" \
        sh -c '"$@" >"$0.out" 2>"$0.err"; status=$?; grep ^write_bytes /proc/$$/io >"$0.io"; exit $status' \
        "$prefix" "$@"
}

median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

rm -rf "$HOURLY_DB" "$FOLDER_DB" "$COMPACT_DB"
printf 'file\tseconds\tpeak_kib\twrite_bytes\tsegments\tdb_bytes\n' >"$PER_IMPORT"
for file in "$GEN"/snapshots/*; do
    measure "$WORK/one" "$TALLY" --db "$HOURLY_DB" import "$file"
    read -r seconds peak <"$WORK/one.time"
    written=$(awk '{print $2}' "$WORK/one.io")
    segments=$("$TALLY" --db "$HOURLY_DB" stats | awk '/^segments/ {print $2}')
    bytes=$(du -sb "$HOURLY_DB" | cut -f1)
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$(basename "$file")" "$seconds" "$peak" "$written" "$segments" "$bytes" >>"$PER_IMPORT"
done

stats() { "$TALLY" --db "$1" stats; }
points=$(stats "$HOURLY_DB" | awk '/^points/ {print $2}')
hourly_bytes=$(du -sb --exclude=LOCK "$HOURLY_DB" | cut -f1)
written_total=$(awk 'NR>1 {s+=$4} END {print s}' "$PER_IMPORT")
most_segments=$(awk 'NR>1 && $5>m {m=$5} END {print m}' "$PER_IMPORT")
median_import=$(awk 'NR>1 {print $2}' "$PER_IMPORT" | median)
max_peak=$(awk 'NR>1 && $3>m {m=$3} END {print m}' "$PER_IMPORT")

measure "$WORK/folder" "$TALLY" --db "$FOLDER_DB" import "$GEN/snapshots"
read -r folder_seconds folder_peak <"$WORK/folder.time"
folder_bytes=$(du -sb --exclude=LOCK "$FOLDER_DB" | cut -f1)
folder_points=$(stats "$FOLDER_DB" | awk '/^points/ {print $2}')
folder_segments=$(stats "$FOLDER_DB" | awk '/^segments/ {print $2}')

cp -r "$HOURLY_DB" "$COMPACT_DB"
measure "$WORK/compact" "$TALLY" --db "$COMPACT_DB" compact
read -r compact_seconds compact_peak <"$WORK/compact.time"
compact_bytes=$(du -sb --exclude=LOCK "$COMPACT_DB" | cut -f1)

declare -A times
queries=("count(drop(followers, 5%, 1h))" "count(recovered_within(drop(followers, 5%, 1h), 1d))")
for q in "${queries[@]}"; do
    for db in "$HOURLY_DB" "$COMPACT_DB"; do
        : >"$WORK/q.times"
    done
    a=$("$TALLY" --db "$HOURLY_DB" query --format csv "$q")
    b=$("$TALLY" --db "$COMPACT_DB" query --format csv "$q")
    if [ "$a" != "$b" ]; then
        echo "answers differ for $q: hourly $a, compacted $b" >&2
        exit 1
    fi
    : >"$WORK/qh.times"
    : >"$WORK/qc.times"
    for _ in $(seq "$RUNS"); do
        /usr/bin/time -f "%e" -a -o "$WORK/qh.times" "$TALLY" --db "$HOURLY_DB" query "$q" >/dev/null
        /usr/bin/time -f "%e" -a -o "$WORK/qc.times" "$TALLY" --db "$COMPACT_DB" query "$q" >/dev/null
    done
    times["$q"]="$(median <"$WORK/qh.times") $(median <"$WORK/qc.times")"
done

{
    echo "## Hourly imports: $ACCOUNTS accounts x $HOURS hours ($(git -C "$ROOT" rev-parse --short HEAD))"
    echo
    echo "| measure | value |"
    echo "|---|---|"
    echo "| points | $points |"
    echo "| hourly: final bytes per point | $(awk -v b="$hourly_bytes" -v p="$points" 'BEGIN {printf "%.3f", b/p}') ($hourly_bytes bytes) |"
    echo "| hourly: median wall seconds per import | $median_import |"
    echo "| hourly: largest peak RSS of an import | $((max_peak / 1024)) MiB |"
    echo "| hourly: most segments after an import | $most_segments |"
    echo "| hourly: bytes written in all / final size | $(awk -v w="$written_total" -v b="$hourly_bytes" 'BEGIN {printf "%.2f", w/b}') ($written_total bytes) |"
    echo "| folder: seconds, M points/s | $folder_seconds, $(awk -v p="$folder_points" -v s="$folder_seconds" 'BEGIN {printf "%.2f", p/s/1e6}') |"
    echo "| folder: bytes per point, segments, peak RSS | $(awk -v b="$folder_bytes" -v p="$folder_points" 'BEGIN {printf "%.3f", b/p}'), $folder_segments, $((folder_peak / 1024)) MiB |"
    echo "| compacted: bytes per point (compact took $compact_seconds s, $((compact_peak / 1024)) MiB) | $(awk -v b="$compact_bytes" -v p="$points" 'BEGIN {printf "%.3f", b/p}') |"
    for q in "${queries[@]}"; do
        read -r h c <<<"${times[$q]}"
        echo "| \`$q\`: hourly / compacted seconds (median of $RUNS) | $h / $c = $(awk -v h="$h" -v c="$c" 'BEGIN {printf "%.2f", (c>0)?h/c:0}')x |"
    done
    echo
    echo "Per import: $PER_IMPORT"
} | tee "$REPORT"

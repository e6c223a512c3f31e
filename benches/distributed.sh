#!/usr/bin/env bash
# benches/distributed.sh — a query across shards (the `distributed`
# feature, docs/scale-out.md [SO51]) on the medium bench data.
#
#   benches/distributed.sh            (knobs below, in the environment)
#
# What it does:
#   1. builds tally in release with `--features distributed` (into
#      $CARGO_TARGET_DIR when set, else target/);
#   2. generates the medium bench data once (ACCOUNTS x HOURS hourly
#      snapshots, `tally generate`, seeded) and imports it into one
#      database and, with `tally import --shard S/4`, into 4 shards, under
#      target/distributed-bench/ (kept for the next run); prints the shards'
#      sizes;
#   3. starts `tally worker`s on 127.0.0.1: first 1 worker serving all 4
#      shards, then 2 workers serving 2 shards each;
#   4. RUNS rounds of `tally query --format csv 'drop(followers, 5%, 1h)'`
#      on the one database, and with `--cluster` on 1 and on 2 workers,
#      each a whole process (wall clock: start, planning, the shards'
#      parts, the gRPC transfer, the final step, printing);
#   5. checks the three answers are the same bytes (exit 1 otherwise) and
#      prints the medians.
#
# Knobs: ACCOUNTS (35000), HOURS (720), SEED (20190213), RUNS (5), and
# PROFILE (release; `debug` takes the test build's binary instead, for
# checking the script when a release build does not fit, and its times are
# not figures to report).
#
# On one 2-core machine the workers share the same two cores as one
# database does: the figures measure what distribution costs (planning,
# gRPC, the merge), not a speed-up, which needs two machines.
#
# A measurement tool, not a test: nothing runs it from `cargo test`, and it
# asserts no time.

set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$ROOT/target/distributed-bench
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
PROFILE=${PROFILE:-release}
TALLY=$TARGET/$PROFILE/tally
ACCOUNTS=${ACCOUNTS:-35000}
HOURS=${HOURS:-720}
SEED=${SEED:-20190213}
RUNS=${RUNS:-5}
SHARDS=4
QUERY='drop(followers, 5%, 1h)'

log() { echo "distributed.sh: $*" >&2; }
die() {
    log "error: $*"
    exit 1
}

# --- 1. build ---------------------------------------------------------------

log "building tally ($PROFILE, --features distributed)"
if [[ $PROFILE == release ]]; then
    (cd "$ROOT" && cargo build --release --locked --quiet --features distributed)
else
    [[ -x $TALLY ]] || die "no $TALLY: build it with cargo test --all-features --no-run"
    log "taking the $PROFILE binary as it is: its times are not figures to report"
fi

# --- 2. data ----------------------------------------------------------------

mkdir -p "$WORK"
DATA=$WORK/medium-$ACCOUNTS-$HOURS-$SEED
if [[ ! -d $DATA/done ]]; then
    log "generating $ACCOUNTS accounts x $HOURS hours (seed $SEED)"
    rm -rf "$DATA"
    mkdir -p "$DATA"
    "$TALLY" generate --out "$DATA/gen" --accounts "$ACCOUNTS" --hours "$HOURS" \
        --seed "$SEED" --single-file >&2
    "$TALLY" --db "$DATA/whole" import "$DATA/gen/snapshots" >&2
    for s in $(seq 0 $((SHARDS - 1))); do
        "$TALLY" --db "$DATA/shard-$s" import --shard "$s/$SHARDS" "$DATA/gen/snapshots" >&2
    done
    rm -rf "$DATA/gen"
    mkdir "$DATA/done"
fi
points() { "$TALLY" --db "$1" stats | awk '$1 == "points" { print $2 }'; }
log "one database: $(points "$DATA/whole") points"
for s in $(seq 0 $((SHARDS - 1))); do
    log "shard $s: $(points "$DATA/shard-$s") points, $(du -sh "$DATA/shard-$s" | cut -f1)"
done

# --- 3. workers ---------------------------------------------------------------

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORT_A=$(free_port)
PORT_B=$(free_port)
shard_dir() { printf '"%s": "%s"' "$1" "$DATA/shard-$1"; }
cat >"$WORK/one.json" <<EOF
{"format": 1, "shards": $SHARDS, "hash": "fnv1a64-mod", "nodes": [
  {"name": "a", "url": "http://127.0.0.1:$PORT_A", "shards": {$(shard_dir 0), $(shard_dir 1), $(shard_dir 2), $(shard_dir 3)}}
]}
EOF
cat >"$WORK/two.json" <<EOF
{"format": 1, "shards": $SHARDS, "hash": "fnv1a64-mod", "nodes": [
  {"name": "a", "url": "http://127.0.0.1:$PORT_A", "shards": {$(shard_dir 0), $(shard_dir 2)}},
  {"name": "b", "url": "http://127.0.0.1:$PORT_B", "shards": {$(shard_dir 1), $(shard_dir 3)}}
]}
EOF

WORKERS=()
stop_workers() {
    for pid in "${WORKERS[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    WORKERS=()
}
trap stop_workers EXIT

# Starts the workers of cluster file $1 (node names after it), and waits
# until each listens.
start_workers() {
    local cluster=$1
    shift
    for node in "$@"; do
        "$TALLY" worker --cluster "$cluster" --node "$node" 2>"$WORK/worker-$node.log" &
        WORKERS+=($!)
    done
    for node in "$@"; do
        for _ in $(seq 100); do
            grep -q "tally worker:" "$WORK/worker-$node.log" && break
            sleep 0.1
        done
        grep -q "tally worker:" "$WORK/worker-$node.log" || die "worker $node did not start"
    done
}

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
wall() {
    local out=$1
    shift
    local start end
    start=$(date +%s.%N)
    "$@" >"$out"
    end=$(date +%s.%N)
    awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }'
}

TALLY_REV=$(git -C "$ROOT" rev-parse --short HEAD)
git -C "$ROOT" diff --quiet HEAD -- src Cargo.toml Cargo.lock || TALLY_REV="$TALLY_REV (+ uncommitted changes)"

# --- 4. the rounds ------------------------------------------------------------

ONE_DB=()
for run in $(seq "$RUNS"); do
    ONE_DB+=("$(wall "$WORK/one-db.csv" "$TALLY" --db "$DATA/whole" query --format csv "$QUERY")")
    log "one database, run $run: ${ONE_DB[-1]} s"
done

start_workers "$WORK/one.json" a
ONE_WORKER=()
for run in $(seq "$RUNS"); do
    ONE_WORKER+=("$(wall "$WORK/one-worker.csv" "$TALLY" query --cluster "$WORK/one.json" --format csv "$QUERY")")
    log "1 worker, run $run: ${ONE_WORKER[-1]} s"
done
stop_workers

start_workers "$WORK/two.json" a b
TWO_WORKERS=()
for run in $(seq "$RUNS"); do
    TWO_WORKERS+=("$(wall "$WORK/two-workers.csv" "$TALLY" query --cluster "$WORK/two.json" --format csv "$QUERY")")
    log "2 workers, run $run: ${TWO_WORKERS[-1]} s"
done
stop_workers

# --- 5. answers and figures ---------------------------------------------------

cmp -s "$WORK/one-db.csv" "$WORK/one-worker.csv" || die "1 worker's rows differ from one database's"
cmp -s "$WORK/one-db.csv" "$WORK/two-workers.csv" || die "2 workers' rows differ from one database's"
ROWS=$(($(wc -l <"$WORK/one-db.csv") - 1))

echo "tally $TALLY_REV ($PROFILE build), $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ), RUNS=$RUNS"
echo "query: $QUERY, $ROWS rows, the same bytes from all three"
echo "one database:        median $(median "${ONE_DB[@]}") s  (runs: ${ONE_DB[*]})"
echo "4 shards, 1 worker:  median $(median "${ONE_WORKER[@]}") s  (runs: ${ONE_WORKER[*]})"
echo "4 shards, 2 workers: median $(median "${TWO_WORKERS[@]}") s  (runs: ${TWO_WORKERS[*]})"

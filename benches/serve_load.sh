#!/usr/bin/env bash
# benches/serve_load.sh — `tally serve` under load.
#
#   benches/serve_load.sh            (knobs below, in the environment)
#
# What it does:
#   1. installs wrk from Debian when it is missing (apt-get), and builds
#      tally in release;
#   2. generates the medium bench data once (ACCOUNTS x HOURS hourly
#      snapshots, `tally generate`, seeded) and imports it into a database
#      under target/serve-load/;
#   3. starts `tally serve --allow-import` on 127.0.0.1:$PORT, and beside it
#      an importer that posts one new hourly snapshot (ACCOUNTS rows) every
#      IMPORT_EVERY seconds through POST /api/import, and a checker that
#      asks count(followers) twice a second;
#   4. runs wrk for DURATION seconds at 1, 8 and 32 connections, for
#      one-account series queries (followers{account="…"}, a different
#      account each request, from the first 1000), for
#      drop(followers, 5%, 1h) over everything (every client asks the same:
#      a shared dashboard), and for drop(followers, N%, 1h) with 50
#      thresholds in turn (no two clients alike);
#   5. prints one Markdown table: requests/s, p50, p99, errors (non-2xx and
#      socket errors), and checks that every answer of the checker is the
#      count of some committed state (one the importer saw after a commit,
#      or the initial one). Exit status 1 on any error or mismatch.
#
# Knobs: ACCOUNTS (35000), HOURS (720), SEED (20190213), PORT (17464),
# DURATION (20), IMPORT_EVERY (3), THREADS (wrk threads, 2).
#
# Everything it writes lives under target/serve-load/. The server and the
# helpers are started by this script and stopped on exit, whatever the
# exit. A measurement tool, not a test: nothing runs it from `cargo test`.

set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$ROOT/target/serve-load
TALLY=$ROOT/target/release/tally
ACCOUNTS=${ACCOUNTS:-35000}
HOURS=${HOURS:-720}
SEED=${SEED:-20190213}
PORT=${PORT:-17464}
DURATION=${DURATION:-20}
IMPORT_EVERY=${IMPORT_EVERY:-3}
THREADS=${THREADS:-2}
URL=http://127.0.0.1:$PORT # never anything but the loopback address
START=2018-11-20T00:00:00Z

log() { echo "serve_load: $*" >&2; }
die() {
    log "error: $*"
    exit 1
}

PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
}
trap cleanup EXIT

# --- 1. tools ---------------------------------------------------------------

if ! command -v wrk >/dev/null; then
    log "installing wrk (apt-get)"
    if ! { apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null 2>&1 && apt-get install -y wrk >/dev/null 2>&1; }; }; then
        die "wrk is not installed and apt-get could not install it; install wrk and run again"
    fi
fi
command -v curl >/dev/null || die "curl is needed"
log "building tally (release)"
(cd "$ROOT" && cargo build --release --locked --quiet)

# --- 2. data ----------------------------------------------------------------

mkdir -p "$WORK"
DB=$WORK/medium-$ACCOUNTS-$HOURS.db
if [[ ! -d $DB ]]; then
    log "generating $ACCOUNTS accounts x $HOURS hours (seed $SEED)"
    rm -rf "$WORK/gen"
    "$TALLY" generate --out "$WORK/gen" --accounts "$ACCOUNTS" --hours "$HOURS" \
        --seed "$SEED" --single-file >&2
    "$TALLY" --db "$DB.tmp" import "$WORK/gen/snapshots" >&2
    mv "$DB.tmp" "$DB"
    rm -rf "$WORK/gen"
fi
# The live copy the importer adds to; the generated one stays as it is.
LIVE=$WORK/live.db
rm -rf "$LIVE"
cp -r "$DB" "$LIVE"

# New hours for the importer, after the medium data's last hour, of the
# same accounts (the same seed names the same accounts whatever the start):
# a crawler counts the accounts it already follows, so each snapshot is a
# full frame of the database's ids. (Before 2026-12-05 this used the seed
# after SEED, whose snapshots named mostly new accounts.)
NEXT=$(date -u -d "$START + $HOURS hours" +%Y-%m-%dT%H:%M:%SZ)
rm -rf "$WORK/next"
"$TALLY" generate --out "$WORK/next" --accounts "$ACCOUNTS" --hours 200 --seed "$SEED" \
    --start "$NEXT" >/dev/null

# --- 3. server, importer, checker --------------------------------------------

"$TALLY" --db "$LIVE" serve --listen "127.0.0.1:$PORT" --allow-import --lookback 1h \
    >"$WORK/serve.out" 2>"$WORK/serve.err" &
PIDS+=($!)
for _ in $(seq 100); do
    grep -q '^listening on' "$WORK/serve.out" 2>/dev/null && break
    sleep 0.1
done
grep -q '^listening on' "$WORK/serve.out" || die "the server did not start: $(cat "$WORK/serve.err")"

count() {
    curl -sf --get "$URL/api/query" --data-urlencode 'q=count(followers)' --data format=csv | tail -1
}
count >"$WORK/committed"

importer() {
    local file n=0
    for file in "$WORK"/next/snapshots/*.csv; do
        sleep "$IMPORT_EVERY"
        local status
        status=$(curl -s -o "$WORK/import.last" -w '%{http_code}' -H 'content-type: text/csv' \
            --data-binary @"$file" "$URL/api/import")
        if [[ $status != 200 ]]; then
            echo "import of $file: $status $(cat "$WORK/import.last")" >>"$WORK/import.errors"
            continue
        fi
        n=$((n + 1))
        count >>"$WORK/committed"
        echo "$n" >"$WORK/imports"
    done
}
: >"$WORK/import.errors"
echo 0 >"$WORK/imports"
importer &
PIDS+=($!)

checker() {
    while true; do
        count >>"$WORK/seen" || echo "checker: request failed" >>"$WORK/import.errors"
        sleep 0.5
    done
}
: >"$WORK/seen"
checker &
PIDS+=($!)

# --- 4. load ----------------------------------------------------------------

curl -sf "$URL/api/accounts?limit=1000" |
    python3 -c 'import json,sys; print("\n".join(json.load(sys.stdin)["accounts"]))' >"$WORK/accounts"
cat >"$WORK/one_account.lua" <<EOF
local accounts = {}
for line in io.lines("$WORK/accounts") do accounts[#accounts + 1] = line end
local i = 0
local function escape(s)
  return (s:gsub("[^%w%-_%.~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end
request = function()
  i = i % #accounts + 1
  local q = 'followers{account="' .. accounts[i] .. '"}'
  return wrk.format("GET", "/api/query?q=" .. escape(q))
end
EOF
cat >"$WORK/report.lua" <<'EOF'
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  io.write(string.format("RESULT %.1f %.2f %.2f %d %d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    errors, summary.requests))
end
EOF
cat "$WORK/one_account.lua" "$WORK/report.lua" >"$WORK/one.lua"
cat >"$WORK/drop.lua" <<'EOF'
request = function()
  return wrk.format("GET", "/api/query?q=drop%28followers%2C%205%25%2C%201h%29")
end
EOF
cat "$WORK/drop.lua" "$WORK/report.lua" >"$WORK/dropq.lua"
# The same fall asked 50 different ways (thresholds 5% to 54%): identical
# questions in flight share one evaluation (docs/http-api.md, rule H44),
# so this row is what each drop() costs when no two clients ask alike.
cat >"$WORK/dropd.lua" <<'EOF2'
local i = 0
request = function()
  i = i % 50 + 1
  return wrk.format("GET", "/api/query?q=drop%28followers%2C%20" .. (i + 4) .. "%25%2C%201h%29")
end
EOF2
cat "$WORK/dropd.lua" "$WORK/report.lua" >"$WORK/dropdq.lua"

TABLE="| query | clients | requests/s | p50 ms | p99 ms | errors | requests |
|---|---|---|---|---|---|---|"
FAILED=0
for c in 1 8 32; do
    for which in one dropq dropdq; do
        threads=$((c < THREADS ? c : THREADS))
        log "wrk: $which, $c clients, ${DURATION}s"
        line=$(wrk -t"$threads" -c"$c" -d"${DURATION}s" --timeout 10s -s "$WORK/$which.lua" "$URL" |
            grep '^RESULT') || die "wrk failed"
        read -r _ rps p50 p99 errors total <<<"$line"
        case $which in
        one) name='followers{account="…"}' ;;
        dropq) name='drop(followers, 5%, 1h)' ;;
        *) name='drop(followers, N%, 1h), N = 5…54 in turn' ;;
        esac
        TABLE+=$'\n'"| \`$name\` | $c | $rps | $p50 | $p99 | $errors | $total |"
        [[ $errors == 0 ]] || FAILED=1
    done
done

# --- 5. report --------------------------------------------------------------

kill "${PIDS[2]}" 2>/dev/null || true # the checker
BAD=$(grep -vxF -f "$WORK/committed" "$WORK/seen" | sort -u || true)
echo
echo "$TABLE"
echo
echo "Imports committed during the run: $(cat "$WORK/imports") (one snapshot of $ACCOUNTS rows every ${IMPORT_EVERY}s)."
echo "Checker answers: $(wc -l <"$WORK/seen"), distinct: $(sort -u "$WORK/seen" | wc -l), not a committed state: $(grep -c . <<<"$BAD" || true)."
echo "Machine: $(nproc) cores, load average before the report: $(cut -d' ' -f1-3 /proc/loadavg)."
echo "Command: ACCOUNTS=$ACCOUNTS HOURS=$HOURS DURATION=$DURATION IMPORT_EVERY=$IMPORT_EVERY benches/serve_load.sh"
if [[ -s $WORK/import.errors ]]; then
    log "import or checker errors:"
    cat "$WORK/import.errors" >&2
    FAILED=1
fi
if [[ -n $BAD ]]; then
    log "answers that are no committed state: $BAD"
    FAILED=1
fi
exit "$FAILED"

#!/usr/bin/env bash
# benches/compare.sh — tally side by side with DuckDB and VictoriaMetrics.
#
#   benches/compare.sh [small|large|all]      (default: small)
#
# What it does, in one run:
#   1. installs its peers if they are missing (idempotent): DuckDB from PyPI
#      into a venv under target/compare/venv, VictoriaMetrics and Prometheus
#      from Debian (apt-get), and builds tally in release;
#   2. for each size, generates a seeded data set with `tally generate`
#      (one long CSV file, and the same data as hourly files);
#   3. measures, round by round in turn (tally, DuckDB, VictoriaMetrics,
#      Prometheus in each round, so a busy neighbour on the machine hurts
#      all of them alike):
#      import points/s and peak memory, bytes on disk per point, and the
#      seconds and peak memory of drop(followers, 5%, 1h) and
#      recovered_within(drop(followers, 5%, 1h), 24h);
#   4. checks the answers: tally's rows equal DuckDB's exactly, equal the
#      generator's ground truth, and equal VictoriaMetrics' and Prometheus'
#      qualifying points; any mismatch stops the script with exit status 1;
#   5. prints one Markdown table (medians, ratios tally / peer, the targets
#      met or missed), the versions, the machine and the exact commands, and
#      saves it as target/compare/report-<which>.md.
#
# Knobs (environment): RUNS_SMALL (default 5), RUNS_LARGE (default 3),
# VM_PORT (default 18428) and PROM_PORT (default 19090), both on 127.0.0.1
# only, SEED (default 20190213), PROMETHEUS=0 to leave Prometheus out.
#
# Everything it writes lives under target/compare/. The servers
# (VictoriaMetrics, Prometheus) are started by this script and stopped on
# exit, whatever the exit. It is a
# measurement tool, not a test: nothing runs it from `cargo test`.

set -euo pipefail

WHICH=${1:-small}
case "$WHICH" in
    small | large | all) ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "usage: $0 [small|large|all]" >&2
        exit 2
        ;;
esac

ROOT=$(cd "$(dirname "$0")/.." && pwd)
HERE=$ROOT/benches/compare
WORK=$ROOT/target/compare
TALLY=$ROOT/target/release/tally
PY=$WORK/venv/bin/python
RUNS_SMALL=${RUNS_SMALL:-5}
RUNS_LARGE=${RUNS_LARGE:-3}
VM_PORT=${VM_PORT:-18428}
VM_URL=http://127.0.0.1:$VM_PORT # never anything but the loopback address
PROM_PORT=${PROM_PORT:-19090}
PROM_URL=http://127.0.0.1:$PROM_PORT
PROMETHEUS=${PROMETHEUS:-1}
SEED=${SEED:-20190213}
# The data sets: accounts x hours x 2 metrics, less the generator's gaps.
SMALL_ACCOUNTS=1400 SMALL_HOURS=720   # about 2 M points
LARGE_ACCOUNTS=35000 LARGE_HOURS=720  # about 50 M points
START=2018-11-20T00:00:00Z            # the generator's default first hour
START_S=1542672000

Q_DROP='drop(followers, 5%, 1h)'
Q_REC='recovered_within(drop(followers, 5%, 1h), 24h)'
# VictoriaMetrics' nearest MetricsQL (see docs/performance.md for where it
# differs). Evaluated by /api/v1/query_range at step 1h with
# -search.setLookbackToStep, so a bare `followers` at step t is the point at
# exactly t (never a value carried over a gap), and
# `max_over_time(followers[1h] offset 1ms)` is the max over
# [t - 1h, t - 1ms] = tally's window t - 1h <= t_j < t. The result is the
# qualifying points, valued `lost` = peak - value; 95 * peak >= 100 * value
# is tally's 100 * loss >= 5 * peak, exact in float64 for counts < 2^53.
PEAK='max_over_time(followers[1h] offset 1ms)'
MQ_DROP="(($PEAK - followers) > 0) and (followers * 100 <= $PEAK * 95)"
# Recovered: some point in (t, t + 24h] at or above the peak (= before),
# i.e. v_r - after >= lost for a one-point episode; a negative offset moves
# the window forward.
MQ_REC="($MQ_DROP) and (max_over_time(followers[24h] offset -24h) >= $PEAK)"
# Prometheus runs the same PromQL text (negative offsets need the feature
# flag promql-negative-offset). Its range [t - 1h - 1ms, t - 1ms] is closed
# at both ends, which on hourly points selects the same point; its bare
# `followers` looks back 5 minutes, so a gap is not carried over either.

RESULTS=$WORK/results-$WHICH.tsv # size, measure, system, value: one line per run
META=$WORK/meta-$WHICH.tsv       # key, value
REPORT=$WORK/report-$WHICH.md
VM_PID=""   # the servers this script started, stopped on exit
PROM_PID=""

log() { printf '\n== %s\n' "$*" >&2; }
die() {
    printf 'compare.sh: %s\n' "$*" >&2
    exit 1
}

# --- cleanup: stop the servers this script started ------------------------

vm_stop() {
    if [[ -n "$VM_PID" ]] && kill -0 "$VM_PID" 2>/dev/null; then
        kill "$VM_PID" 2>/dev/null || true
        # VictoriaMetrics flushes and exits on SIGTERM; wait for it.
        wait "$VM_PID" 2>/dev/null || true
    fi
    VM_PID=""
}
prom_stop() {
    if [[ -n "$PROM_PID" ]] && kill -0 "$PROM_PID" 2>/dev/null; then
        kill "$PROM_PID" 2>/dev/null || true
        wait "$PROM_PID" 2>/dev/null || true
    fi
    PROM_PID=""
}
trap 'vm_stop; prom_stop' EXIT
trap 'exit 130' INT TERM

# --- installing the peers (idempotent) ------------------------------------

install_peers() {
    local need=()
    command -v victoria-metrics >/dev/null || need+=(victoria-metrics)
    if [[ $PROMETHEUS == 1 ]]; then
        command -v promtool >/dev/null && command -v prometheus >/dev/null || need+=(prometheus)
    fi
    command -v curl >/dev/null || need+=(curl)
    if ((${#need[@]})); then
        log "installing ${need[*]} from Debian"
        local sudo=""
        [[ $(id -u) -eq 0 ]] || sudo=sudo
        $sudo apt-get update -qq
        # The packages may try to start their own services (on :8428 and
        # :9090, with their own data folders); this script uses none of
        # those.
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
    fi
    if ! [[ -x $PY ]] || ! "$PY" -c 'import duckdb' 2>/dev/null; then
        log "installing DuckDB from PyPI into $WORK/venv"
        python3 -m venv "$WORK/venv"
        "$PY" -m pip install -q --disable-pip-version-check duckdb
    fi
    log "building tally (release)"
    (cd "$ROOT" && cargo build --release --locked --quiet)
    # The revision measured: what was built, before anything can move HEAD.
    TALLY_REV=$(git -C "$ROOT" rev-parse --short HEAD)
    git -C "$ROOT" diff --quiet HEAD -- src Cargo.toml Cargo.lock || TALLY_REV="$TALLY_REV (+ uncommitted changes)"
}

# --- measuring -------------------------------------------------------------

# timed OUT CMD...: runs CMD with its standard output in OUT, and sets
# T_WALL (seconds, wall clock), T_CPU (user + system seconds) and T_RSS (the
# peak resident set in KiB: wait4's ru_maxrss, what `/usr/bin/time -v`
# prints as "Maximum resident set size", read in microseconds by timed.py).
timed() {
    local out=$1
    shift
    T_WALL="" T_CPU="" T_RSS=""
    read -r T_WALL T_CPU T_RSS < <("$PY" "$HERE/timed.py" "$out" "$@")
    [[ -n $T_RSS ]] || die "failed: $*"
}

# record SIZE MEASURE SYSTEM VALUE: one run's figure.
record() { printf '%s\t%s\t%s\t%s\n' "$@" >>"$RESULTS"; }
meta() { printf '%s\t%s\n' "$1" "$2" >>"$META"; }
# field NAME LINE: the value of NAME=value in a line of duck.py's output.
field() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2"; }
div() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f", a / b }'; }

# --- VictoriaMetrics -------------------------------------------------------

# vm_start DATA_DIR: a fresh server on 127.0.0.1:$VM_PORT storing in DATA_DIR.
vm_start() {
    if curl -s -o /dev/null "$VM_URL/health"; then
        die "something already listens on 127.0.0.1:$VM_PORT; set VM_PORT"
    fi
    # -retentionPeriod=100y: the data is from 2018-19. setLookbackToStep:
    # see MQ_DROP. The search limits are raised so that the large data set
    # is not refused (the defaults protect a shared server from heavy
    # queries, which these are on purpose). Error logs are rate-limited: a
    # row without `following` is logged as an error by the CSV importer.
    victoria-metrics \
        -httpListenAddr="127.0.0.1:$VM_PORT" \
        -storageDataPath="$1" \
        -retentionPeriod=100y \
        -search.setLookbackToStep \
        -search.maxQueryDuration=30m \
        -search.maxSamplesPerQuery=100000000000 \
        -search.maxSamplesPerSeries=100000000 \
        -search.maxUniqueTimeseries=10000000 \
        -loggerErrorsPerSecondLimit=5 \
        >>"$WORK/victoria-metrics.log" 2>&1 &
    VM_PID=$!
    for _ in $(seq 100); do
        curl -s -o /dev/null "$VM_URL/health" && return 0
        kill -0 "$VM_PID" 2>/dev/null || die "victoria-metrics exited; see $WORK/victoria-metrics.log"
        sleep 0.1
    done
    die "victoria-metrics did not answer on $VM_URL"
}

# The server's peak resident set (KiB) since the last vm_reset_peak.
vm_peak() { awk '/^VmHWM:/ { print $2 }' "/proc/$VM_PID/status"; }
vm_reset_peak() { echo 5 >"/proc/$VM_PID/clear_refs"; }

# vm_import CSV: VictoriaMetrics' CSV importer takes one metric per request
# here: a row whose `following` cell is empty ("...,1749,") is rejected
# whole ("missing columns"), followers included, so the file is posted once
# per metric, each time naming only that metric's column. Then
# /internal/force_flush makes every point searchable.
vm_import() {
    curl -sS -f --data-binary @"$1" \
        "$VM_URL/api/v1/import/csv?format=1:time:rfc3339,2:label:account,3:metric:followers"
    curl -sS -f --data-binary @"$1" \
        "$VM_URL/api/v1/import/csv?format=1:time:rfc3339,2:label:account,4:metric:following"
    curl -sS -f "$VM_URL/internal/force_flush"
}

# vm_count END HOURS: the points VictoriaMetrics holds.
vm_count() {
    local q m n total=0
    for m in followers following; do
        q="sum(count_over_time(${m}[$(($2 + 1))h]))"
        n=$(curl -sS -f -G "$VM_URL/api/v1/query" --data-urlencode "query=$q" \
            -d time="$1" -d nocache=1 |
            "$PY" -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else 0)')
        total=$((total + n))
    done
    echo "$total"
}

# vm_merge DIR: force every partition into one part and wait until no merge
# runs and the folder's size has held still for 3 seconds.
vm_merge() {
    curl -sS -f "$VM_URL/internal/force_merge"
    local prev=-1 size active still=0
    sleep 1
    for _ in $(seq 1800); do
        active=$(curl -sS "$VM_URL/metrics" | awk '/^vm_active_(force_)?merges/ { s += $2 } END { print s + 0 }')
        size=$(du -sb "$1" | cut -f1)
        if [[ $active -eq 0 && $size -eq $prev ]]; then
            still=$((still + 1))
            ((still >= 3)) && return 0
        else
            still=0
        fi
        prev=$size
        sleep 1
    done
    die "VictoriaMetrics' merge did not settle"
}

# vm_query MQL OUT: a range query over the whole data set at step 1h, its
# JSON in OUT; sets T_WALL (curl's total time) and T_RSS (the server's peak
# during the query).
vm_query() {
    vm_reset_peak
    T_WALL=$(curl -sS -f -G "$VM_URL/api/v1/query_range" \
        --data-urlencode "query=$1" -d start="$START" -d end="$VM_END" \
        -d step=1h -d nocache=1 -o "$2" -w '%{time_total}')
    T_RSS=$(vm_peak)
}

# --- Prometheus ------------------------------------------------------------

# prom_start DATA_DIR: a server on 127.0.0.1:$PROM_PORT over the blocks in
# DATA_DIR, scraping nothing.
prom_start() {
    if curl -s -o /dev/null "$PROM_URL/-/ready"; then
        die "something already listens on 127.0.0.1:$PROM_PORT; set PROM_PORT"
    fi
    printf 'global:\n  scrape_interval: 1h\n' >"$WORK/prometheus.yml"
    # Limits raised as for VictoriaMetrics: the large recovered_within()
    # query holds more samples than the default 50 M.
    prometheus \
        --config.file="$WORK/prometheus.yml" \
        --storage.tsdb.path="$1" \
        --storage.tsdb.retention.time=100y \
        --web.listen-address="127.0.0.1:$PROM_PORT" \
        --enable-feature=promql-negative-offset \
        --query.timeout=30m \
        --query.max-samples=2000000000 \
        >>"$WORK/prometheus.log" 2>&1 &
    PROM_PID=$!
    for _ in $(seq 600); do
        [[ $(curl -s -o /dev/null -w '%{http_code}' "$PROM_URL/-/ready") == 200 ]] && return 0
        kill -0 "$PROM_PID" 2>/dev/null || die "prometheus exited; see $WORK/prometheus.log"
        sleep 0.1
    done
    die "prometheus did not get ready on $PROM_URL"
}

# prom_query PROMQL OUT: as vm_query.
prom_query() {
    echo 5 >"/proc/$PROM_PID/clear_refs"
    T_WALL=$(curl -sS -f -G "$PROM_URL/api/v1/query_range" \
        --data-urlencode "query=$1" -d start="$START" -d end="$VM_END" \
        -d step=1h -o "$2" -w '%{time_total}')
    T_RSS=$(awk '/^VmHWM:/ { print $2 }' "/proc/$PROM_PID/status")
}

# --- one size --------------------------------------------------------------

run_size() {
    local size=$1 accounts=$2 hours=$3 runs=$4
    local d=$WORK/$size r line points rows secs duck_bytes
    VM_END=$(date -u -d "@$((START_S + (hours - 1) * 3600))" +%Y-%m-%dT%H:%M:%SZ)
    mkdir -p "$d"

    log "$size: generating $accounts accounts x $hours hours (seed $SEED)"
    rm -rf "$d/gen" "$d/gen-hourly"
    line=$("$TALLY" generate --out "$d/gen" --accounts "$accounts" --hours "$hours" \
        --seed "$SEED" --single-file)
    echo "$line" >&2
    "$TALLY" generate --out "$d/gen-hourly" --accounts "$accounts" --hours "$hours" \
        --seed "$SEED" >/dev/null
    local csv=$d/gen/snapshots/snapshots.csv
    # "wrote 1 files, 1007556 rows, 2013105 points, ..."
    rows=$(sed -n 's/.* \([0-9]*\) rows.*/\1/p' <<<"$line")
    points=$(sed -n 's/.* \([0-9]*\) points.*/\1/p' <<<"$line")
    [[ -n $rows && -n $points ]] || die "cannot read the generator's summary: $line"
    meta "$size.points" "$points"
    meta "$size.followers_points" "$rows" # every row has a followers count
    meta "$size.csv_bytes" "$(stat -c %s "$csv")"
    meta "$size.shape" "$accounts accounts x $hours hours"
    meta "$size.runs" "$runs"
    if [[ $PROMETHEUS == 1 ]]; then
        log "$size: converting the CSV to OpenMetrics for promtool (not timed)"
        "$PY" "$HERE/openmetrics.py" "$csv" "$d/openmetrics.txt"
        meta "$size.openmetrics_bytes" "$(stat -c %s "$d/openmetrics.txt")"
    fi

    # 1 and 2. Import of one long CSV file, then bytes on disk per point:
    # `runs` rounds of tally, DuckDB, VictoriaMetrics, Prometheus. Each
    # import starts from nothing. The sizes: tally's after `tally compact`,
    # DuckDB's file after its checkpoint, VictoriaMetrics' whole data folder
    # (data and index) after a forced merge, Prometheus' blocks; measured in
    # every round, since VictoriaMetrics' index (which its forced merge does
    # not touch) ends in one or two parts depending on timing.
    local tb vb pb
    for r in $(seq "$runs"); do
        log "$size: import, round $r/$runs"
        rm -rf "$d/tally.db"
        timed /dev/null "$TALLY" --db "$d/tally.db" import "$csv"
        record "$size" import_s tally "$T_WALL"
        record "$size" import_pts_s tally "$(div "$points" "$T_WALL")"
        record "$size" import_rss tally "$T_RSS"
        echo "tally: $T_WALL s, $T_RSS KiB" >&2
        "$TALLY" --db "$d/tally.db" compact >&2
        "$TALLY" --db "$d/tally.db" stats >"$d/tally-stats.txt"
        tb=$(awk '$1 == "bytes" && $2 == "on" { print $4 }' "$d/tally-stats.txt")
        record "$size" bytes_pt tally "$(div "$tb" "$points")"

        timed "$WORK/duck.out" "$PY" "$HERE/duck.py" load "$d/duck.duckdb" "$csv"
        line=$(cat "$WORK/duck.out")
        secs=$(field seconds "$line")
        [[ $(field points "$line") == "$points" ]] || die "DuckDB loaded $(field points "$line") points, not $points"
        record "$size" import_s duckdb "$secs"
        record "$size" import_pts_s duckdb "$(div "$points" "$secs")"
        record "$size" import_rss duckdb "$T_RSS"
        duck_bytes=$(field bytes "$line")
        record "$size" bytes_pt duckdb "$(div "$duck_bytes" "$points")"
        echo "duckdb: $line, $T_RSS KiB" >&2

        vm_stop
        rm -rf "$d/vm"
        vm_start "$d/vm"
        local t0 t1
        t0=$(date +%s%N)
        vm_import "$csv"
        t1=$(date +%s%N)
        secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f", (b - a) / 1e9 }')
        record "$size" import_s vm "$secs"
        record "$size" import_pts_s vm "$(div "$points" "$secs")"
        record "$size" import_rss vm "$(vm_peak)"
        echo "victoria-metrics: $secs s, $(vm_peak) KiB" >&2
        vm_merge "$d/vm"
        vb=$(du -sb "$d/vm" | cut -f1)
        record "$size" bytes_pt vm "$(div "$vb" "$points")"

        if [[ $PROMETHEUS == 1 ]]; then
            # promtool builds TSDB blocks offline from the OpenMetrics file;
            # blocks up to a month long (the default, 2 h, makes one block
            # per 2 hours: 360 uncompacted blocks here, about 50 bytes per
            # point, until a server compacts them).
            rm -rf "$d/prom"
            timed /dev/null promtool tsdb create-blocks-from openmetrics --quiet \
                --max-block-duration=744h "$d/openmetrics.txt" "$d/prom"
            record "$size" import_s prom "$T_WALL"
            record "$size" import_pts_s prom "$(div "$points" "$T_WALL")"
            record "$size" import_rss prom "$T_RSS"
            pb=$(du -sb "$d/prom" | cut -f1)
            record "$size" bytes_pt prom "$(div "$pb" "$points")"
            echo "promtool: $T_WALL s, $T_RSS KiB" >&2
        fi
    done
    local vm_points
    vm_points=$(vm_count "$VM_END" "$hours")
    [[ $vm_points == "$points" ]] || die "VictoriaMetrics holds $vm_points points, not $points"

    # 1b. Import, the same data as one file per hour (a folder of $hours
    # files): tally and DuckDB (a glob). VictoriaMetrics would take one
    # request per file and metric through the same parser; not measured.
    for r in $(seq "$runs"); do
        log "$size: import of hourly files, round $r/$runs"
        rm -rf "$d/tally-hourly.db"
        timed /dev/null "$TALLY" --db "$d/tally-hourly.db" import "$d/gen-hourly/snapshots"
        record "$size" hourly_pts_s tally "$(div "$points" "$T_WALL")"
        timed "$WORK/duck.out" "$PY" "$HERE/duck.py" load "$d/duck-hourly.duckdb" "$d/gen-hourly/snapshots/*.csv"
        line=$(cat "$WORK/duck.out")
        [[ $(field points "$line") == "$points" ]] || die "DuckDB loaded $(field points "$line") hourly points, not $points"
        record "$size" hourly_pts_s duckdb "$(div "$points" "$(field seconds "$line")")"
    done
    rm -rf "$d/tally-hourly.db" "$d/duck-hourly.duckdb" "$d/gen-hourly"

    # The sizes of the last round, for the record.
    if [[ $PROMETHEUS == 1 ]]; then
        meta "$size.prom_bytes" "$pb"
        rm -f "$d/openmetrics.txt"
        # The server, over the last round's blocks (it adds a WAL and may
        # compact them, after they were measured).
        prom_start "$d/prom"
    fi
    meta "$size.tally_bytes" "$tb"
    meta "$size.duckdb_bytes" "$duck_bytes"
    meta "$size.vm_bytes" "$vb"
    meta "$size.vm_data_bytes" "$(du -sb "$d/vm/data" | cut -f1)"
    meta "$size.vm_indexdb_bytes" "$(du -sb "$d/vm/indexdb" | cut -f1)"
    meta "$size.vm_parts" "$(curl -sS "$VM_URL/metrics" | awk '/^vm_parts\{/ { printf "%s%s=%s", sep, $1, $2; sep = " " }')"
    cat "$d/tally-stats.txt" >&2
    # The floor of DuckDB's peak memory: Python, `import duckdb` and opening
    # the file, doing nothing.
    timed /dev/null "$PY" "$HERE/duck.py" baseline "$d/duck.duckdb"
    meta "$size.duckdb_python_floor_kib" "$T_RSS"

    # 3 and 4. The two queries, `runs` rounds of tally, DuckDB, VM; each
    # tally and DuckDB run is a new process opening the database.
    local followers_points
    followers_points=$rows
    for r in $(seq "$runs"); do
        log "$size: queries, round $r/$runs"
        local name q sql mq
        for name in drop rec; do
            if [[ $name == drop ]]; then
                q=$Q_DROP sql=$HERE/drop.sql mq=$MQ_DROP
            else
                q=$Q_REC sql=$HERE/recovered.sql mq=$MQ_REC
            fi
            timed "$d/tally-$name.csv" "$TALLY" --db "$d/tally.db" query --format csv "$q"
            record "$size" "${name}_s" tally "$T_WALL"
            record "$size" "${name}_rss" tally "$T_RSS"
            if [[ $name == drop ]]; then
                # Points read per CPU-second, the whole process included.
                record "$size" drop_pts_cpu tally "$(div "$followers_points" "$T_CPU")"
            fi
            echo "tally $name: $T_WALL s, $T_CPU s CPU, $T_RSS KiB" >&2

            timed "$WORK/duck.out" "$PY" "$HERE/duck.py" query "$d/duck.duckdb" "$sql" "$d/duck-$name.csv"
            line=$(cat "$WORK/duck.out")
            record "$size" "${name}_s" duckdb "$(field seconds "$line")"
            record "$size" "${name}_rss" duckdb "$T_RSS"
            echo "duckdb $name: $line, $T_RSS KiB" >&2

            vm_query "$mq" "$d/vm-$name.json"
            record "$size" "${name}_s" vm "$T_WALL"
            record "$size" "${name}_rss" vm "$T_RSS"
            echo "victoria-metrics $name: $T_WALL s, $T_RSS KiB" >&2

            if [[ $PROMETHEUS == 1 ]]; then
                prom_query "$mq" "$d/prom-$name.json"
                record "$size" "${name}_s" prom "$T_WALL"
                record "$size" "${name}_rss" prom "$T_RSS"
                echo "prometheus $name: $T_WALL s, $T_RSS KiB" >&2
            fi
        done
        if [[ $r -eq 1 ]]; then
            # The answers, checked once (every later round writes the same
            # files again): any mismatch exits 1 here.
            log "$size: checking the answers"
            "$PY" "$HERE/check.py" same "$size drop(): tally = DuckDB" "$d/tally-drop.csv" "$d/duck-drop.csv"
            "$PY" "$HERE/check.py" same "$size recovered_within(): tally = DuckDB" "$d/tally-rec.csv" "$d/duck-rec.csv"
            "$PY" "$HERE/check.py" truth "$d/gen/truth.csv" "$d/tally-drop.csv" "$d/tally-rec.csv" 5
            "$PY" "$HERE/check.py" vm "$size drop()" "$d/vm-drop.json" "$d/tally-drop.csv"
            "$PY" "$HERE/check.py" vm "$size recovered_within()" "$d/vm-rec.json" "$d/tally-rec.csv"
            if [[ $PROMETHEUS == 1 ]]; then
                "$PY" "$HERE/check.py" prom "$size drop()" "$d/prom-drop.json" "$d/tally-drop.csv"
                "$PY" "$HERE/check.py" prom "$size recovered_within()" "$d/prom-rec.json" "$d/tally-rec.csv"
            fi
            meta "$size.drop_rows" "$(($(wc -l <"$d/tally-drop.csv") - 1))"
            meta "$size.rec_rows" "$(($(wc -l <"$d/tally-rec.csv") - 1))"
        fi
    done
    vm_stop
    prom_stop
}

# --- main ------------------------------------------------------------------

mkdir -p "$WORK"
install_peers
: >"$RESULTS"
: >"$META"
: >"$WORK/victoria-metrics.log"
: >"$WORK/prometheus.log"

case "$WHICH" in
    small) run_size small "$SMALL_ACCOUNTS" "$SMALL_HOURS" "$RUNS_SMALL" ;;
    large) run_size large "$LARGE_ACCOUNTS" "$LARGE_HOURS" "$RUNS_LARGE" ;;
    all)
        run_size small "$SMALL_ACCOUNTS" "$SMALL_HOURS" "$RUNS_SMALL"
        run_size large "$LARGE_ACCOUNTS" "$LARGE_HOURS" "$RUNS_LARGE"
        ;;
esac

# The report: the table, then how it was made.
{
    echo "## compare.sh $WHICH — $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo
    "$PY" "$HERE/check.py" table "$RESULTS" "$META"
    echo
    echo "- tally: git $TALLY_REV, release build"
    echo "- DuckDB: $("$PY" "$HERE/duck.py" version) (Python package, $("$PY" --version 2>&1))"
    echo "- VictoriaMetrics: $(dpkg-query -W -f '${Version}' victoria-metrics 2>/dev/null || echo '?') (Debian package victoria-metrics)"
    if [[ $PROMETHEUS == 1 ]]; then
        echo "- Prometheus: $(dpkg-query -W -f '${Version}' prometheus 2>/dev/null || echo '?') (Debian package prometheus: promtool and the server)"
    fi
    echo "- machine: $(nproc) cores ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)), $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) memory, Linux $(uname -r); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
    awk -F'\t' '{ printf "- %s: %s\n", $1, $2 }' "$META"
    echo
    echo "Commands (D = target/compare/SIZE):"
    echo
    echo '```sh'
    echo "tally generate --out D/gen --accounts N --hours 720 --seed $SEED --single-file"
    echo "tally --db D/tally.db import D/gen/snapshots/snapshots.csv"
    echo "tally --db D/tally.db compact && tally --db D/tally.db stats"
    echo "tally --db D/tally.db query --format csv '$Q_DROP' > D/tally-drop.csv"
    echo "tally --db D/tally.db query --format csv '$Q_REC' > D/tally-rec.csv"
    echo "python benches/compare/duck.py load D/duck.duckdb D/gen/snapshots/snapshots.csv   # CREATE TABLE snapshots AS SELECT * FROM read_csv(...)"
    echo "python benches/compare/duck.py query D/duck.duckdb benches/compare/drop.sql D/duck-drop.csv"
    echo "python benches/compare/duck.py query D/duck.duckdb benches/compare/recovered.sql D/duck-rec.csv"
    echo "victoria-metrics -httpListenAddr=127.0.0.1:$VM_PORT -storageDataPath=D/vm -retentionPeriod=100y -search.setLookbackToStep ..."
    echo "curl --data-binary @D/gen/snapshots/snapshots.csv '$VM_URL/api/v1/import/csv?format=1:time:rfc3339,2:label:account,3:metric:followers'"
    echo "curl --data-binary @D/gen/snapshots/snapshots.csv '$VM_URL/api/v1/import/csv?format=1:time:rfc3339,2:label:account,4:metric:following'"
    echo "curl $VM_URL/internal/force_flush; curl $VM_URL/internal/force_merge"
    echo "curl -G $VM_URL/api/v1/query_range -d start=$START -d end=LAST_HOUR -d step=1h -d nocache=1 --data-urlencode query=..."
    echo "python benches/compare/openmetrics.py D/gen/snapshots/snapshots.csv D/openmetrics.txt"
    echo "promtool tsdb create-blocks-from openmetrics --max-block-duration=744h D/openmetrics.txt D/prom"
    echo "prometheus --storage.tsdb.path=D/prom --storage.tsdb.retention.time=100y --web.listen-address=127.0.0.1:$PROM_PORT --enable-feature=promql-negative-offset ..."
    echo "curl -G $PROM_URL/api/v1/query_range (the same parameters and query)"
    echo "#   drop:      $MQ_DROP"
    echo "#   recovered: $MQ_REC"
    echo '```'
} >"$REPORT"
cat "$REPORT"

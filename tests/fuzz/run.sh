#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) for SECONDS each and prints the
# executions libFuzzer reports for each. docs/reliability.md, "Fuzzing".
#
#   tests/fuzz/run.sh SECONDS [TARGET...]
#
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`). By default it
# builds on the stable toolchain without a sanitizer (tally is safe Rust but
# for its memory maps, and an uninstrumented build runs several times more
# inputs per second); FUZZ_TOOLCHAIN=nightly FUZZ_SANITIZER=address runs
# under AddressSanitizer instead, which also makes -malloc_limit_mb bite
# (libFuzzer sees single allocations only through a sanitizer's hooks;
# database_files bounds them itself either way).
#
# FUZZ_TRACE_COMPARES=0 builds without libFuzzer's compare tracing
# (cargo-fuzz's --no-trace-compares): about 70% of a run's cycles go to it,
# so a run without it makes several times as many executions, guided less
# well toward the values inputs are compared with. Long runs that add
# executions to a corpus the guided runs already grew can use it.
#
# Inputs the fuzzer finds go to tests/fuzz/work/TARGET (not checked in);
# the checked-in corpus, tests/fuzz/corpus/TARGET, is only read. Crashes go
# to tests/fuzz/artifacts/TARGET. Every run is niced: the machines this runs
# on are shared.
set -uo pipefail

seconds=${1:?usage: tests/fuzz/run.sh SECONDS [TARGET...]}
shift
fuzz_dir=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$fuzz_dir/../.." && pwd)
cd "$root"

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(query_text import_snapshot database_files api_hostile)
fi
toolchain=${FUZZ_TOOLCHAIN:-stable}
# libFuzzer's timeout is wall-clock time, and a niced process on a busy
# shared machine can stall for minutes (a run here was stalled 355 s on an
# input that takes 70 ms alone). Reproduce any timeout alone before calling
# it a finding.
timeout=${FUZZ_TIMEOUT:-600}
sanitizer=${FUZZ_SANITIZER:-none}
trace=()
if [ "${FUZZ_TRACE_COMPARES:-1}" = 0 ]; then
    trace=(--no-trace-compares)
fi

# `nice` ranks processes within one scheduling group only: where the
# kernel groups processes by session (sched_autogroup_enabled, the default
# on desktop and many server kernels), a run started with `setsid` or from
# its own terminal competes with everything else as an equal, niced or not
# (a fresh-clone CI run beside two such fuzzers took 45 minutes instead of
# about 15). Lowering the session group's own priority fixes that; where
# the file is absent or not writable, `nice` alone is what there is. It
# lowers the whole session's group, for as long as the session lasts: run
# from an interactive shell, that shell and what it starts later are
# lowered too (start the script with `setsid` to keep them apart).
if [ -w /proc/self/autogroup ]; then
    echo 19 >/proc/self/autogroup 2>/dev/null || true
fi

# Commits fsync; on tmpfs that costs nothing, so the checks' temporary
# databases go there when it exists.
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
    export TMPDIR=/dev/shm
fi

status=0
summary=()
for target in "${targets[@]}"; do
    work="$fuzz_dir/work/$target"
    mkdir -p "$work" "$fuzz_dir/artifacts/$target"
    log="$fuzz_dir/work/$target.log"
    echo "== $target: ${seconds}s (cargo +$toolchain fuzz, sanitizer $sanitizer${trace[*]:+, ${trace[*]}})"
    nice -n 19 cargo "+$toolchain" fuzz run --fuzz-dir "$fuzz_dir" --sanitizer "$sanitizer" "${trace[@]}" \
        "$target" "$work" "$fuzz_dir/corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=512 -malloc_limit_mb=512 -timeout="$timeout" \
        -print_final_stats=1 >"$log" 2>&1
    code=$?
    runs=$(grep -oE 'Done [0-9]+ runs' "$log" | tail -1 | grep -oE '[0-9]+')
    if [ -z "$runs" ]; then
        # A crash ends the run before "Done"; the last status line counts.
        runs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
    fi
    if [ $code -ne 0 ]; then
        status=1
        echo "   FAILED (exit $code); see $log and $fuzz_dir/artifacts/$target"
        grep -E 'panicked at|ERROR: libFuzzer|SUMMARY|memory allocation of' "$log" | head -5 | sed 's/^/   /'
    fi
    summary+=("$(printf '%-16s %12s runs  %6ss  %s' "$target" "${runs:-?}" "$seconds" \
        "$([ $code -eq 0 ] && echo ok || echo FAILED)")")
done
echo "== executions"
printf '%s\n' "${summary[@]}"
exit $status

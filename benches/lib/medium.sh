# benches/lib/medium.sh — sourced by benches/export.sh and benches/sql.sh:
# DuckDB from PyPI, a release build of tally, and the medium bench data
# imported once into target/export-bench/.
#
# The sourcing script sets ROOT, WORK, TALLY, PY, ACCOUNTS, HOURS and SEED,
# and defines log and die; then it calls
#
#   medium_tools FEATURES   DuckDB into target/compare/venv when missing
#                           (the venv benches/compare.sh uses), and tally
#                           built in release with `--features FEATURES`
#   medium_db               sets DB to the database of the medium data
#                           (ACCOUNTS x HOURS hourly snapshots, `tally
#                           generate`, seeded), importing it the first time,
#                           and POINTS to its number of points

medium_tools() {
    local features=$1
    if ! [[ -x $PY ]] || ! "$PY" -c 'import duckdb' 2>/dev/null; then
        log "installing DuckDB from PyPI into target/compare/venv"
        python3 -m venv "$ROOT/target/compare/venv"
        "$PY" -m pip install -q --disable-pip-version-check duckdb
    fi
    log "building tally (release, --features $features)"
    (cd "$ROOT" && cargo build --release --locked --quiet --features "$features")
}

medium_db() {
    mkdir -p "$WORK"
    DB=$WORK/medium-$ACCOUNTS-$HOURS-$SEED.db
    if [[ ! -d $DB ]]; then
        log "generating $ACCOUNTS accounts x $HOURS hours (seed $SEED)"
        rm -rf "$WORK/gen" "$DB.tmp"
        "$TALLY" generate --out "$WORK/gen" --accounts "$ACCOUNTS" --hours "$HOURS" \
            --seed "$SEED" --single-file >&2
        "$TALLY" --db "$DB.tmp" import "$WORK/gen/snapshots" >&2
        mv "$DB.tmp" "$DB"
        rm -rf "$WORK/gen"
    fi
    POINTS=$("$TALLY" --db "$DB" stats | awk '$1 == "points" { print $2 }')
    [[ -n $POINTS ]] || die "could not read the number of points"
    log "$POINTS points in $DB"
}

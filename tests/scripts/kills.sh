#!/usr/bin/env bash
# Many kills (issue 10; docs/reliability.md, "Many kills"): SIGKILL the real
# `tally` binary at random moments of imports, of the merges that follow
# their commits, and of compactions, and after every kill check the
# database against a model of the snapshots committed so far:
#
#   - `tally verify` is clean;
#   - the database holds exactly the snapshots imported before the killed
#     command, or those and the one it was importing (docs/format.md, I2),
#     point for point, as `tally query` prints them;
#   - after the next command that runs to its end (a writer), no temporary
#     file is left and every segment file is one the manifest names (R1).
#
# Usage: tests/scripts/kills.sh [KILLS]        (default 1000)
#
# Needs bash, a POSIX awk, GNU date (+%s%N), mkfifo, find and sort.
#
# Environment: TALLY, the binary (default target/release/tally); SEED, the
# seed of bash's $RANDOM (default: the time; printed, so that a run can be
# repeated); KILLS_ACCOUNTS, accounts per snapshot (default 100);
# KILLS_EPOCH, snapshots before the script starts a new database (default
# 150); KILLS_DIR, the work folder (default: a new temporary one, removed
# unless a check fails).
#
# Every sixth command is `tally compact`; the others import the next
# hourly snapshot. Kills land at a delay drawn uniformly from zero to the
# mean running time of the kind of command (measured on the commands that
# ran to their end), so they fall anywhere from the start of the process
# to its exit. Half the imports that close a 6-hour window (a merge
# follows their commit) are killed between the mean running time of an
# import without a merge and that of one with, to aim at the merge. Each
# kill is put in a phase from what it left: for an import, not committed
# with or without temporary files (writing, or before writing); committed
# with a temporary file (inside a merge), with fewer segments than its
# commit made (after a merge's commit), or neither (a merge due but not
# yet writing, or no merge due: exiting); for a compaction, before
# writing, writing, or after its commit.
#
# Exit status: 0 when every check passed, 1 at the first failure (the work
# folder is kept and named), 2 on a usage error.

set -u

kills_wanted=${1:-1000}
case $kills_wanted in
'' | *[!0-9]*)
	echo "usage: $0 [KILLS]" >&2
	exit 2
	;;
esac
tally=${TALLY:-target/release/tally}
if [ ! -x "$tally" ]; then
	echo "kills.sh: no tally binary at $tally (build it with cargo build --release, or set TALLY)" >&2
	exit 2
fi
awk=${AWK:-awk}
seed=${SEED:-$(date +%s)}
RANDOM=$seed
accounts=${KILLS_ACCOUNTS:-100}
epoch_len=${KILLS_EPOCH:-150}
if [ -n "${KILLS_DIR:-}" ]; then
	work=$KILLS_DIR
	mkdir -p "$work"
else
	work=$(mktemp -d "${TMPDIR:-/tmp}/tally-kills.XXXXXX")
fi
db=$work/db
snaps=$work/snaps
mkdir -p "$snaps"

# 2019-02-13T00:00:00Z: snapshot h is at T0 + h hours.
T0=1550016000

started=$(date +%s)
kills=0
completed=0
failures=0
epochs=1
declare -A phase_count=()

# Nanoseconds since the epoch.
now_ns() { date +%s%N; }

# RFC 3339 of Unix seconds, as tally prints times, in awk (POSIX awk has no
# strftime): the civil date of a day number is Howard Hinnant's algorithm.
AWK_TIME='
function iso(s,   z, era, doe, yoe, y, doy, mp, d, m, r) {
	z = int(s / 86400) + 719468
	r = s % 86400
	era = int(z / 146097)
	doe = z - era * 146097
	yoe = int((doe - int(doe / 1460) + int(doe / 36524) - int(doe / 146096)) / 365)
	y = yoe + era * 400
	doy = doe - (365 * yoe + int(yoe / 4) - int(yoe / 100))
	mp = int((5 * doy + 2) / 153)
	d = doy - int((153 * mp + 2) / 5) + 1
	m = mp < 10 ? mp + 3 : mp - 9
	if (m <= 2) y++
	return sprintf("%04d-%02d-%02dT%02d:%02d:%02dZ", y, m, d, int(r / 3600), int(r % 3600 / 60), r % 60)
}'

# The snapshot of hour $1: every account's followers and following (some
# following cells empty: not captured), the marker account new<h>, which
# tells how many snapshots a database holds, and the account `shared`,
# whose one point every snapshot overwrites (the later commit wins).
snapshot() {
	local h=$1
	local file=$snaps/s$h.csv
	if [ ! -f "$file" ]; then
		"$awk" -v h="$h" -v n="$accounts" -v t0="$T0" 'BEGIN {
			t = t0 + h * 3600
			print "time,account,followers,following"
			for (a = 0; a < n; a++) {
				following = ((a + h) % 7 == 0) ? "" : (h * 31 + a * 17) % 1000
				printf "%d,acct%04d,%d,%s\n", t, a, (h * 7919 + a * 104729) % 50000, following
			}
			printf "%d,new%05d,%d,\n", t0, h, h
			printf "%d,shared,%d,%d\n", t0, h, 1000 + h
		}' >"$file.tmp" && mv "$file.tmp" "$file"
	fi
	echo "$file"
}

# What `tally query --format csv` prints for followers and following
# (without headers, sorted) once the first $1 snapshots are committed.
model() {
	"$awk" -v n="$1" -v accts="$accounts" -v t0="$T0" "$AWK_TIME"'
		BEGIN {
			t0s = iso(t0)
			for (h = 0; h < n; h++) {
				th = iso(t0 + h * 3600)
				for (a = 0; a < accts; a++) {
					printf "acct%04d,followers,%s,%d\n", a, th, (h * 7919 + a * 104729) % 50000
					if ((a + h) % 7 != 0)
						printf "acct%04d,following,%s,%d\n", a, th, (h * 31 + a * 17) % 1000
				}
				printf "new%05d,followers,%s,%d\n", h, t0s, h
			}
			if (n > 0) {
				printf "shared,followers,%s,%d\n", t0s, n - 1
				printf "shared,following,%s,%d\n", t0s, 1000 + n - 1
			}
		}' | LC_ALL=C sort
}

# What the database holds, in the model's form; fails when it cannot be
# read.
actual() {
	local metric
	for metric in followers following; do
		"$tally" --db "$db" query --format csv "$metric" || return 1
	done | grep -v '^account,metric,time,value$' | LC_ALL=C sort
}

fail() {
	failures=$((failures + 1))
	echo "kills.sh: FAILURE after kill $kills (seed $seed): $*" >&2
	echo "kills.sh: the database and the snapshots are kept in $work" >&2
	summary
	exit 1
}

summary() {
	local elapsed=$(($(date +%s) - started)) phase
	echo "kills: $kills, commands run to their end: $completed, databases: $epochs, snapshots committed in the last: $committed, seed: $seed, $elapsed s"
	for phase in "${!phase_count[@]}"; do
		printf '  %5d  %s\n' "${phase_count[$phase]}" "$phase"
	done | sort -k2
	echo "failures: $failures"
}

# The mean running time, in microseconds, of the commands of each kind
# that ran to their end; seeded by the first runs below.
declare -A total_us=() runs=()
mean_us() {
	local kind=$1
	if [ "${runs[$kind]:-0}" -eq 0 ]; then
		echo 50000
	else
		echo $((total_us[$kind] / runs[$kind]))
	fi
}

# Sets `drawn` to a random number in [0, $1), from two draws of $RANDOM
# (30 bits). Not called in a subshell, whose $RANDOM would not advance the
# script's (and so would repeat, or not follow the seed).
random_below() {
	local r=$(((RANDOM << 15) | RANDOM))
	drawn=$((r % ($1 > 0 ? $1 : 1)))
}

# The segments the manifest names, as `tally stats` counts them.
named_segments() {
	"$tally" --db "$db" stats | "$awk" '$1 == "segments" { print $2 }'
}

# The check after a command that ran to its end: no leftovers ([R1]). Sets
# `segments`.
check_clean() {
	local leftovers files
	leftovers=$(find "$db" -maxdepth 1 -name '*.tmp' | wc -l)
	[ "$leftovers" -eq 0 ] || fail "$leftovers temporary files remain after a writer ran to its end: $(ls "$db")"
	segments=$(named_segments)
	files=$(find "$db" -maxdepth 1 \( -name '*.tseg' -o -name '*.thead' \) | wc -l)
	[ "$segments" = "$files" ] || fail "the manifest names $segments segments and heads, the folder holds $files: $(ls "$db")"
}

# A pause of $1 microseconds without starting a process (`sleep` costs a
# millisecond or more to start, as long as many of the phases it aims at):
# a read, with a timeout, from a pipe nothing ever writes to.
mkfifo "$work/never"
exec 9<>"$work/never"
pause_us() {
	read -r -t "$(printf '%d.%06d' $(($1 / 1000000)) $(($1 % 1000000)))" -u 9 _
}

committed=0 # snapshots in the current database
segments=0  # segments its manifest names
round=0
while [ "$kills" -lt "$kills_wanted" ]; do
	round=$((round + 1))
	if [ "$committed" -ge "$epoch_len" ]; then
		rm -rf "$db"
		committed=0
		segments=0
		epochs=$((epochs + 1))
	fi
	# Every 6th command compacts (once there is something to compact);
	# the others import the next snapshot, which merges after its commit.
	if [ $((round % 6)) -eq 0 ] && [ "$committed" -gt 1 ]; then
		kind=compact
		command=("$tally" --db "$db" compact)
	else
		kind=import
		if [ "$committed" -gt 0 ] && [ $((committed % 6)) -eq 0 ]; then
			kind=merging-import
		fi
		command=("$tally" --db "$db" import "$(snapshot "$committed")")
	fi
	mean=$(mean_us "$kind")
	if [ "${runs[$kind]:-0}" -lt 2 ]; then
		# The first runs of a kind only measure it.
		delay_us=-1
	elif [ "$kind" = merging-import ] && [ $((RANDOM % 2)) -eq 0 ]; then
		# Aim at the merge: between the running time of an import that
		# merges nothing and that of one that merges.
		plain=$(mean_us import)
		[ "$plain" -lt "$mean" ] || plain=$((mean / 2))
		random_below $((mean - plain))
		delay_us=$((plain + drawn))
	else
		random_below "$mean"
		delay_us=$drawn
	fi

	begin=$(now_ns)
	"${command[@]}" >"$work/out" 2>"$work/err" &
	pid=$!
	if [ "$delay_us" -ge 0 ]; then
		pause_us "$delay_us"
		kill -KILL "$pid" 2>/dev/null
	fi
	# (bash reports a job killed by a signal on stderr; the script says
	# what it needs itself.)
	wait "$pid" 2>/dev/null
	status=$?
	end=$(now_ns)

	if [ "$status" -eq 0 ]; then
		# It ran to its end (a kill, if any, found it finished).
		completed=$((completed + 1))
		total_us[$kind]=$((${total_us[$kind]:-0} + (end - begin) / 1000))
		runs[$kind]=$((${runs[$kind]:-0} + 1))
		[ "$kind" = compact ] || committed=$((committed + 1))
		check_clean
		continue
	fi
	if [ "$status" -ne 137 ]; then
		fail "\`${command[*]}\` exited with $status: $(cat "$work/err")"
	fi
	kills=$((kills + 1))

	# What the kill left, before anything else touches the database.
	temporaries=0
	[ -d "$db" ] && temporaries=$(find "$db" -maxdepth 1 -name '*.tmp' | wc -l)
	if [ ! -f "$db/MANIFEST" ]; then
		# Killed before the first commit of a new database.
		[ "$committed" -eq 0 ] || fail "the manifest is gone"
		phase="first import, before its commit"
		phase_count[$phase]=$((${phase_count[$phase]:-0} + 1))
		continue
	fi
	if ! report=$("$tally" --db "$db" verify 2>&1); then
		fail "tally verify: $report"
	fi
	if ! got=$(actual); then
		fail "tally query failed"
	fi
	holds=$(printf '%s\n' "$got" | grep -c '^new[0-9]*,followers,')
	before=$segments
	segments=$(named_segments)
	case $kind in
	compact)
		[ "$holds" -eq "$committed" ] || fail "a killed compaction left $holds snapshots of $committed"
		if [ "$segments" -lt "$before" ]; then
			phase="compaction, after its commit"
		elif [ "$temporaries" -gt 0 ]; then
			phase="compaction, writing its segment"
		else
			phase="compaction, before writing"
		fi
		;;
	*)
		if [ "$holds" -eq "$committed" ]; then
			if [ "$temporaries" -gt 0 ]; then
				phase="import, writing (not committed)"
			else
				phase="import, before writing (not committed)"
			fi
		elif [ "$holds" -eq $((committed + 1)) ]; then
			committed=$holds
			# The commit added one segment; a merge's commit takes some
			# away. A temporary file after the commit is a merge's.
			if [ "$temporaries" -gt 0 ]; then
				phase="import, committed, inside a merge (writing)"
			elif [ "$segments" -le "$before" ]; then
				phase="import, committed, after a merge's commit"
			elif [ "$kind" = merging-import ]; then
				phase="import, committed, merge due, not yet writing"
			else
				phase="import, committed, no merge due (exiting)"
			fi
		else
			fail "a killed import of snapshot $committed left $holds snapshots"
		fi
		;;
	esac
	phase_count[$phase]=$((${phase_count[$phase]:-0} + 1))
	expected=$(model "$committed")
	if [ "$got" != "$expected" ]; then
		diff <(printf '%s\n' "$expected") <(printf '%s\n' "$got") | head -20 >&2
		fail "the database differs from the model of $committed snapshots ($phase)"
	fi
done

# The last writer cleans up what the last kill left.
if [ -f "$db/MANIFEST" ]; then
	"$tally" --db "$db" import --no-merge "$(snapshot "$committed")" >/dev/null 2>&1 ||
		fail "the import after the last kill failed"
	committed=$((committed + 1))
	check_clean
	[ "$(actual)" = "$(model "$committed")" ] || fail "the database differs from the model at the end"
fi
summary
[ -n "${KILLS_DIR:-}" ] || rm -rf "$work"

#!/usr/bin/env python3
"""Correctness checks and the final table of benches/compare.sh.

    check.py same NAME A.csv B.csv
        A and B hold the same rows: equal headers, and equal bodies once each
        is sorted by account, metric, start, end (the first four columns).
    check.py truth TRUTH.csv DROPS.csv RECOVERED.csv PERCENT
        tally's answers against the generator's ground truth: the rows of
        drop(followers, PERCENT%, 1h) are exactly the truth's events losing
        PERCENT% or more; recovered_within(..., 24h) keeps exactly the
        glitches (each back at the truth's recovered_at), and so
        `not recovered_within` is exactly the purges.
    check.py vm|prom NAME RESULT.json TALLY.csv
        VictoriaMetrics' (Prometheus') answer (a query_range result whose points are the
        qualifying points, valued `lost`) against tally's episodes: the same
        (account, end, lost) triples. True of this data set, where every fall
        is a one-hour step (see docs/performance.md for where the two
        semantics part in general).
    check.py vmcount VM.json
        print the number of points in a query_range result.
    check.py table RESULTS.tsv META.tsv
        medians, ratios and targets as a Markdown table.

Every check prints one line and exits 1 on a mismatch.
"""

import csv
import json
import statistics
import sys
from datetime import datetime, timedelta, timezone


def read_csv(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        sys.exit(f"MISMATCH: {path} is empty (not even a header)")
    return rows[0], rows[1:]


def fail(msg, extra=()):
    print(f"MISMATCH: {msg}")
    for line in list(extra)[:10]:
        print(f"    {line}")
    sys.exit(1)


def same(name, a, b):
    ha, ra = read_csv(a)
    hb, rb = read_csv(b)
    if ha != hb:
        fail(f"{name}: headers differ", [f"{a}: {ha}", f"{b}: {hb}"])
    key = lambda r: (r[0], r[1], r[2], r[3], r)  # noqa: E731
    ra.sort(key=key)
    rb.sort(key=key)
    if ra != rb:
        only_a = sorted(set(map(tuple, ra)) - set(map(tuple, rb)))
        only_b = sorted(set(map(tuple, rb)) - set(map(tuple, ra)))
        fail(
            f"{name}: {len(ra)} rows in {a}, {len(rb)} in {b}, "
            f"{len(only_a)} only in the first, {len(only_b)} only in the second",
            [f"< {','.join(r)}" for r in only_a[:5]] + [f"> {','.join(r)}" for r in only_b[:5]],
        )
    print(f"ok: {name}: {len(ra)} rows, identical")


def iso(ms):
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(s):
    return int(datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp() * 1000)


def truth(truth_csv, drops_csv, recovered_csv, percent):
    percent = int(percent)
    _, events = read_csv(truth_csv)
    # account,event,time,before,lost,lost_pct,recovered_at
    want_drops, want_rec = set(), set()
    kinds = {"purge": 0, "glitch": 0}
    for account, kind, time, before, lost, lost_pct, recovered_at in events:
        before, lost = int(before), int(lost)
        if 100 * lost < percent * before:
            continue  # too small a fall for drop(followers, PERCENT%, 1h)
        kinds[kind] += 1
        end = parse_iso(time)
        row = (account, "followers", iso(end - 3_600_000), time,
               str(before), str(before - lost), str(lost), lost_pct)
        want_drops.add(row)
        if kind == "glitch":
            rec = parse_iso(recovered_at)
            if rec - end > 24 * 3_600_000:
                continue  # a glitch slower than the 24h asked for
            want_rec.add(row + (recovered_at, str((rec - end) // 1000)))
    _, drops = read_csv(drops_csv)
    _, rec = read_csv(recovered_csv)
    drops, rec = set(map(tuple, drops)), set(map(tuple, rec))
    if drops != want_drops:
        fail(f"drop() vs truth: {len(drops)} rows, truth has {len(want_drops)}",
             [f"tally only: {r}" for r in sorted(drops - want_drops)]
             + [f"truth only: {r}" for r in sorted(want_drops - drops)])
    if rec != want_rec:
        fail(f"recovered_within() vs truth: {len(rec)} rows, truth has {len(want_rec)} glitches",
             [f"tally only: {r}" for r in sorted(rec - want_rec)]
             + [f"truth only: {r}" for r in sorted(want_rec - rec)])
    purges = {r for r in drops if r not in {x[:8] for x in rec}}
    want_purges = want_drops - {x[:8] for x in want_rec}
    if purges != want_purges:
        fail("not recovered_within() vs truth purges")
    print(f"ok: truth: {len(drops)} falls of {percent}% or more = {kinds['purge']} purges "
          f"(exactly the unrecovered) + {kinds['glitch']} glitches (exactly the recovered, "
          f"at the truth's recovered_at)")


def vm_points(vm_json):
    with open(vm_json) as f:
        doc = json.load(f)
    if doc.get("status") != "success":
        fail(f"{vm_json}: {doc}")
    out = set()
    for series in doc["data"]["result"]:
        account = series["metric"].get("account")
        for ts, value in series["values"]:
            out.add((account, iso(int(ts) * 1000), str(int(float(value)))))
    return out


def vm(name, vm_json, tally_csv, peer):
    got = vm_points(vm_json)
    header, rows = read_csv(tally_csv)
    ia, ie, il = header.index("account"), header.index("end"), header.index("lost")
    want = {(r[ia], r[ie], r[il]) for r in rows}
    if got != want:
        fail(f"{name}: {peer} found {len(got)} points, tally {len(want)} episodes",
             [f"{peer} only: {r}" for r in sorted(got - want)]
             + [f"tally only: {r}" for r in sorted(want - got)])
    print(f"ok: {name}: the {len(got)} qualifying points of {peer} = tally's episodes (account, end, lost)")


def vmcount(vm_json):
    print(len(vm_points(vm_json)))


# --- the table -----------------------------------------------------------

# key, label, unit, format
MEASURES = [
    ("import_pts_s", "import, one CSV file", "M points/s", lambda v: f"{v / 1e6:.2f}"),
    ("import_s", "import, one CSV file", "s", lambda v: f"{v:.2f}"),
    ("import_rss", "import peak RSS", "MiB", lambda v: f"{v / 1024:.0f}"),
    ("hourly_pts_s", "import, hourly files", "M points/s", lambda v: f"{v / 1e6:.2f}"),
    ("bytes_pt", "bytes on disk per point", "B", lambda v: f"{v:.3f}"),
    ("drop_s", "drop(followers, 5%, 1h)", "s", lambda v: f"{v:.3f}"),
    ("drop_rss", "drop() peak RSS", "MiB", lambda v: f"{v / 1024:.0f}"),
    ("rec_s", "recovered_within(drop(…), 24h)", "s", lambda v: f"{v:.3f}"),
    ("rec_rss", "recovered_within() peak RSS", "MiB", lambda v: f"{v / 1024:.0f}"),
    ("drop_pts_cpu", "drop(), followers points per CPU-second", "M points/s", lambda v: f"{v / 1e6:.0f}"),
]
NAMES = {"tally": "tally", "duckdb": "DuckDB", "vm": "VictoriaMetrics", "prom": "Prometheus"}
SHORT = {"duckdb": "DuckDB", "vm": "VM", "prom": "Prom"}


def target(key, t, d, v):
    """The issue's target for a measure, met or missed, or ''."""
    if key == "import_pts_s" and t and d:
        return f"≥ 2× DuckDB: {'met' if t >= 2 * d else 'MISSED'} ({t / d:.2f}×)"
    if key == "bytes_pt" and t and v:
        return f"< VictoriaMetrics: {'met' if t < v else 'MISSED'} ({v / t:.1f}× fewer)"
    if key in ("drop_s", "rec_s") and t and d:
        out = f"≥ 10× faster than DuckDB: {'met' if d >= 10 * t else 'MISSED'} ({d / t:.0f}×)"
        if v:
            out += f"; faster than VM: {'met' if t < v else 'MISSED'} ({v / t:.0f}×)"
        return out
    if key == "drop_pts_cpu" and t:
        return f"≥ 300 M/s per core: {'met' if t >= 300e6 else 'MISSED'}"
    return ""


def table(results_tsv, meta_tsv):
    runs = {}
    with open(results_tsv) as f:
        for line in f:
            size, key, system, value = line.rstrip("\n").split("\t")
            runs.setdefault((size, key, system), []).append(float(value))
    meta = {}
    with open(meta_tsv) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("\t")
            meta[k] = v
    sizes = []
    for size, _, _ in runs:
        if size not in sizes:
            sizes.append(size)
    systems = [s for s in NAMES if any(k[2] == s for k in runs)]
    peers = [s for s in systems if s != "tally"]
    med = {k: statistics.median(v) for k, v in runs.items()}

    head = ["size", "measure"] + [NAMES[s] for s in systems] + [f"tally / {SHORT[p]}" for p in peers] + ["target"]
    print("| " + " | ".join(head) + " |")
    print("| --- | --- | " + " | ".join("---:" for _ in systems + peers) + " | --- |")
    for size in sizes:
        label_size = (f"{size} ({float(meta.get(size + '.points', 0)) / 1e6:.1f} M points, "
                      f"{meta.get(size + '.runs', '?')} runs)")
        for key, label, unit, fmt in MEASURES:
            vals = {s: med.get((size, key, s)) for s in systems}
            if all(v is None for v in vals.values()):
                continue
            cells = ["—" if vals[s] is None else fmt(vals[s]) for s in systems]
            for p in peers:
                if vals["tally"] is None or not vals[p]:
                    cells.append("—")
                else:
                    cells.append(f"{vals['tally'] / vals[p]:.3g}")
            goal = target(key, vals.get("tally"), vals.get("duckdb"), vals.get("vm"))
            print(f"| {label_size} | {label} ({unit}) | " + " | ".join(cells) + f" | {goal} |")
    print()
    print("Each figure is the median of the runs given with the size; the systems ran round by round")
    print("in turn. Ratios are tally / peer: above 1 is better for tally in points/s, below 1 is better")
    print("for tally in seconds, bytes and MiB.")


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "same" and len(argv) == 5:
        same(*argv[2:])
    elif cmd == "truth" and len(argv) == 6:
        truth(*argv[2:])
    elif cmd == "vm" and len(argv) == 5:
        vm(*argv[2:], peer="VictoriaMetrics")
    elif cmd == "prom" and len(argv) == 5:
        vm(*argv[2:], peer="Prometheus")
    elif cmd == "vmcount" and len(argv) == 3:
        vmcount(argv[2])
    elif cmd == "table" and len(argv) == 4:
        table(*argv[2:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)

#!/usr/bin/env python3
"""The DuckDB side of benches/compare.sh: one measured step per process.

    duck.py load DBFILE CSV_GLOB      CREATE TABLE snapshots AS SELECT * FROM read_csv(...)
    duck.py query DBFILE SQLFILE OUT  run one query, write its rows as CSV to OUT

Each prints one line `seconds=S rows=N [points=P bytes=B]`. The seconds are
measured inside the process around the DuckDB work only (load: the CREATE
TABLE, a CHECKPOINT and closing the file; query: executing and fetching every
row), so Python's start-up and `import duckdb` are not charged to DuckDB.
The caller wraps the process in /usr/bin/time for its peak memory, which
therefore includes the Python interpreter (see `duck.py baseline`).

    duck.py baseline DBFILE           open the file and do nothing: the floor of that memory
    duck.py version                   print DuckDB's version
"""

import csv
import os
import sys
import time

import duckdb


def load(db_file, csv_glob):
    for path in (db_file, db_file + ".wal"):
        if os.path.exists(path):
            os.remove(path)
    start = time.perf_counter()
    con = duckdb.connect(db_file)
    # The reference: DuckDB's own CSV reader with its type detection
    # (time becomes TIMESTAMP WITH TIME ZONE, the counts BIGINT, an empty
    # cell NULL), into a table in a database file.
    con.execute(
        "CREATE TABLE snapshots AS SELECT * FROM read_csv(?)", [csv_glob]
    )
    con.execute("CHECKPOINT")
    con.close()
    seconds = time.perf_counter() - start
    con = duckdb.connect(db_file, read_only=True)
    rows, points = con.execute(
        "SELECT count(*), count(followers) + count(following) FROM snapshots"
    ).fetchone()
    con.close()
    size = os.path.getsize(db_file)
    if os.path.exists(db_file + ".wal"):
        size += os.path.getsize(db_file + ".wal")
    print(f"seconds={seconds:.6f} rows={rows} points={points} bytes={size}")


def query(db_file, sql_file, out):
    with open(sql_file) as f:
        sql = f.read()
    con = duckdb.connect(db_file, read_only=True)
    start = time.perf_counter()
    cur = con.execute(sql)
    rows = cur.fetchall()
    seconds = time.perf_counter() - start
    header = [d[0] for d in cur.description]
    con.close()
    with open(out, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
    print(f"seconds={seconds:.6f} rows={len(rows)}")


def baseline(db_file):
    con = duckdb.connect(db_file, read_only=True)
    con.close()
    print("seconds=0 rows=0")


def main(argv):
    if len(argv) >= 2 and argv[1] == "version":
        print(duckdb.__version__)
    elif len(argv) == 4 and argv[1] == "load":
        load(argv[2], argv[3])
    elif len(argv) == 5 and argv[1] == "query":
        query(argv[2], argv[3], argv[4])
    elif len(argv) == 3 and argv[1] == "baseline":
        baseline(argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)

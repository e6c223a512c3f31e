#!/usr/bin/env python3
"""openmetrics.py CSV OUT: the snapshots of `tally generate --single-file` as
an OpenMetrics text file for `promtool tsdb create-blocks-from openmetrics`,
Prometheus' only bulk import (it reads neither CSV nor JSON lines).

OpenMetrics keeps each metric family's samples together, so the file is
read twice: every `followers{account="..."} VALUE SECONDS` line, then every
`following` line (an empty cell has no line). Not timed: it is the format
conversion a Prometheus user would have to write.
"""

import sys
from datetime import datetime, timezone


def main(argv):
    if len(argv) != 3:
        sys.exit(__doc__)
    src, dst = argv[1], argv[2]
    seconds = {}

    def ts(text):
        s = seconds.get(text)
        if s is None:
            s = int(datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")
                    .replace(tzinfo=timezone.utc).timestamp())
            seconds[text] = s
        return s

    with open(dst, "w") as out:
        for column, name in ((2, "followers"), (3, "following")):
            out.write(f"# TYPE {name} gauge\n")
            with open(src) as f:
                header = next(f).rstrip("\n").split(",")
                if header != ["time", "account", "followers", "following"]:
                    sys.exit(f"openmetrics.py: unexpected header {header}")
                for line in f:
                    cells = line.rstrip("\n").split(",")
                    if cells[column]:
                        out.write(f'{name}{{account="{cells[1]}"}} {cells[column]} {ts(cells[0])}\n')
        out.write("# EOF\n")


if __name__ == "__main__":
    main(sys.argv)

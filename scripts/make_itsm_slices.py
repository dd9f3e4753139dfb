"""Cut the small test slices under tests/data/itsm/ from the full logs (see its README).

A slice is the first 60 cases of the log plus every 400th case after them, with every event of
each chosen case, in the file's own order and bytes (XES traces verbatim; CSV rows verbatim).

    python scripts/make_itsm_slices.py DATA_DIR   # DATA_DIR holds the four dataset folders
"""

from __future__ import annotations

import csv
import gzip
import io
import re
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "itsm"
FIRST, EVERY = 60, 400


def chosen(rank: int) -> bool:
    return rank < FIRST or rank % EVERY == 0


def slice_xes(source: Path, target: Path) -> None:
    with gzip.open(source, "rt", encoding="utf-8") as f:
        text = f.read()
    head, _, rest = text.partition("\t<trace>")
    # Keep the declarations (extensions, globals, classifiers); drop the log-level attributes
    # after them (long meta statistics, unused).
    kept = []
    for line in head.splitlines():
        if re.match(r"\t<(float|int|string|date|list|boolean) ", line):
            break
        kept.append(line)
    traces = ("\t<trace>" + rest).split("\t</trace>\n")
    body = [t + "\t</trace>\n" for rank, t in enumerate(traces[:-1]) if chosen(rank)]
    xes = "\n".join(kept) + "\n" + "".join(body) + "</log>\n"
    if target.suffix == ".gz":
        target.write_bytes(gzip.compress(xes.encode(), mtime=0))
    else:
        target.write_text(xes, encoding="utf-8")


def slice_csv(source: Path, target: Path, case_column: str) -> None:
    with gzip.open(source, "rt", encoding="utf-8", newline="") as f:
        lines = f.read().splitlines(keepends=True)
    header, rows = lines[0], lines[1:]
    ranks: dict[str, int] = {}
    out = [header]
    for line in rows:
        case = next(csv.reader(io.StringIO(line)))[header.split(",").index(case_column)]
        rank = ranks.setdefault(case, len(ranks))
        if chosen(rank):
            out.append(line)
    target.write_text("".join(out), encoding="utf-8")


def main(data: Path) -> None:
    slice_xes(data / "bpic13-incidents/BPI_Challenge_2013_incidents.xes.gz", OUT / "bpic13.xes.gz")
    slice_xes(data / "helpdesk/helpdesk.xes.gz", OUT / "helpdesk.xes")
    slice_csv(
        data / "uci-incident-management/incident_event_log.csv.gz", OUT / "servicenow.csv", "number"
    )
    slice_csv(
        data / "bpic14-incident-sample/BPIC14_incident_log_sample.csv.gz",
        OUT / "bpic14.csv",
        "incident_id",
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]))

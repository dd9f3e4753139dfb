"""Full-size runs of the four real ITSM logs on PostgreSQL: figures and wall times.

For each log, in a scratch database of its own: read + plan the commands, write them through
the ledger (in process by default, or ``--via grpc``), bring every read model current, then
compute the report's figures from the read models. Prints each log's JSON figures and a table
of times. Goal (issue 6): BPIC 2013 imported with all read models current faster than pm4py
merely reads and formats the same XES; pm4py (optional extra ``pm4py``) is timed in the same run
in a separate process, before and after the ledger's run, and the mean of the two is the
baseline. The machine may be shared: only the same-run ratio means anything.

Run: make bench-itsm ITSM_DATA=/path/to/data   (or python -m bench.itsm_bench --data DIR)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

from bench.common import cpu_seconds_by_pid, print_table, scratch_database, write_json
from services.bootstrap import open_import_target
from services.itsm.importer import import_log
from services.itsm.mapping import PRESETS
from services.projector.database import ReadModelDatabase
from services.reports.figures import ownership_figures
from services.settings import Settings

LOGS = {
    "bpic13": "bpic13-incidents/BPI_Challenge_2013_incidents.xes.gz",
    "servicenow": "uci-incident-management/incident_event_log.csv.gz",
    "helpdesk": "helpdesk/helpdesk.xes.gz",
    "bpic14": "bpic14-incident-sample/BPIC14_incident_log_sample.csv.gz",
}

PM4PY_READ = """
import sys, time, warnings
warnings.simplefilter("ignore")
import pm4py
started = time.perf_counter()
log = pm4py.read_xes(sys.argv[1])
log = pm4py.format_dataframe(
    log, case_id="case:concept:name", activity_key="concept:name", timestamp_key="time:timestamp"
)
print(len(log), time.perf_counter() - started)
"""


def pm4py_seconds(path: Path) -> tuple[int, float] | None:
    """pm4py's read_xes + format_dataframe in a fresh process (module import not counted)."""
    done = subprocess.run(
        [sys.executable, "-c", PM4PY_READ, str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        print(f"pm4py unavailable: {done.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    events, seconds = done.stdout.split()[-2:]
    return int(events), float(seconds)


def cpu_by_process(database_url: str) -> dict[str, float]:
    """CPU seconds so far of this process, its child processes (an import's projector) and the
    PostgreSQL backends serving the scratch database (sampled while their connections are open)."""
    with psycopg.connect(database_url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        backends = {
            row[0]
            for row in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (database_url.rsplit("/", 1)[1],),
            )
        }
    stats = cpu_seconds_by_pid()
    me = os.getpid()
    out = {"importer (this process)": time.process_time()}
    for pid, (ppid, _, cpu) in stats.items():
        if ppid == me and cpu > 0.05:
            out[f"child {pid}"] = cpu
    out["postgres backends"] = sum(stats[pid][2] for pid in backends if pid in stats)
    return {k: round(v, 2) for k, v in out.items()}


def run_log(name: str, path: Path, via: str) -> dict[str, Any]:
    with scratch_database(f"itsm_{name}") as url:
        settings = Settings(database_url=url)
        started = time.perf_counter()
        cpu_before = time.process_time()
        with open_import_target(settings, via, None) as target:
            report = import_log(path, PRESETS[name], target.sink, f"import {name}")
            imported = time.perf_counter()
            assert target.make_current(report.sent.last_position)
            cpu = cpu_by_process(url)
            cpu["importer (this process)"] = round(cpu["importer (this process)"] - cpu_before, 2)
        current = time.perf_counter()
        readmodels = ReadModelDatabase(settings.resolved_readmodel_url())
        try:
            figures = ownership_figures(readmodels, top_n=10)
        finally:
            readmodels.close()
        reported = time.perf_counter()
    return {
        "import": report.as_dict(),
        "seconds": {
            "read_and_plan": round(report.read_seconds, 2),
            "write": round(report.send_seconds, 2),
            "read_models_current_after_write": round(current - imported, 2),
            "import_and_read_models_current": round(current - started, 2),
            "report": round(reported - current, 2),
        },
        "cpu_seconds": cpu,
        "figures": figures,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default=os.environ.get("LEDGER_ITSM_DATA"), required=False)
    parser.add_argument("--only", default=",".join(LOGS), help="comma-separated log names")
    parser.add_argument("--via", choices=["inprocess", "grpc"], default="inprocess")
    args = parser.parse_args()
    if not args.data:
        parser.error("give --data DIR (or LEDGER_ITSM_DATA): the folder of the four logs")
    data = Path(args.data)
    results: dict[str, Any] = {}
    baseline: list[float] = []
    for name in args.only.split(","):
        path = data / LOGS[name]
        if name == "bpic13" and (before := pm4py_seconds(path)) is not None:
            baseline.append(before[1])
        results[name] = run_log(name, path, args.via)
        if name == "bpic13" and (after := pm4py_seconds(path)) is not None:
            baseline.append(after[1])
        print(f"\n== {name} ==")
        print(json.dumps(results[name], indent=2))
    rows = []
    for name, result in results.items():
        s = result["seconds"]
        line = [
            f"{name}: {result['import']['rows_read']} rows → {result['figures']['events']} events",
            f"{s['import_and_read_models_current']:.2f} s (read+plan {s['read_and_plan']:.2f}, "
            f"write {s['write']:.2f}, read models {s['read_models_current_after_write']:.2f})",
        ]
        if name == "bpic13" and baseline:
            pm4py_mean = sum(baseline) / len(baseline)
            ratio = s["import_and_read_models_current"] / pm4py_mean
            line += [
                f"pm4py read_xes+format {pm4py_mean:.2f} s ({', '.join(f'{b:.2f}' for b in baseline)})",
                f"{ratio:.2f}x pm4py (goal < 1)",
            ]
        elif name == "bpic13":
            line += ["pm4py not installed (make bench-itsm installs it)", "-"]
        else:
            line += ["-", "-"]
        rows.append((line[0], line[1], line[2], line[3]))
        cpu = ", ".join(f"{k} {v:.2f}" for k, v in result["cpu_seconds"].items())
        rows.append((f"{name}: CPU seconds by process", cpu, "-", "-"))
    print_table(
        f"ITSM logs on PostgreSQL, import via {args.via} (wall times; machine may be shared)", rows
    )
    results["pm4py_bpic13_seconds"] = baseline
    write_json("itsm", results)


if __name__ == "__main__":
    main()

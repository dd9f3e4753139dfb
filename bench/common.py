"""Shared pieces of the benchmarks: a scratch PostgreSQL database, medians, the result table,
servers in child processes and their CPU."""

from __future__ import annotations

import json
import os
import re
import signal
import statistics
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import psycopg
from grpc_health.v1 import health_pb2, health_pb2_grpc
from psycopg import sql

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
RESULTS = Path(__file__).resolve().parent / "results"


def server_url() -> str:
    return os.environ.get("LEDGER_BENCH_DATABASE_URL", DEFAULT_URL)


@contextmanager
def scratch_database(prefix: str) -> Iterator[str]:
    """A database of its own for one benchmark run, dropped afterwards."""
    admin = server_url()
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"{admin.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def timed(action: Callable[[], int]) -> tuple[int, float]:
    started = time.perf_counter()
    count = action()
    return count, time.perf_counter() - started


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def print_table(title: str, rows: list[tuple[str, str, str, str]]) -> None:
    headers = ("figure", "value", "baseline (same run)", "ratio / goal")
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(4)]
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))


def write_json(name: str, figures: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(figures, indent=2, sort_keys=True, default=str))
    return path


# --- servers in child processes ------------------------------------------------------------------

SERVING_LINE = re.compile(rb"serving on \S+:(\d+)")


def _proc_stats() -> Iterator[tuple[int, int, str, float]]:
    """(pid, parent pid, name, CPU seconds including waited-for children) of every process."""
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        cpu = sum(int(f) for f in fields[11:15]) / tick  # utime, stime, cutime, cstime
        yield int(entry.name), int(fields[1]), name, cpu


def cpu_seconds_by_pid() -> dict[int, tuple[int, str, float]]:
    """pid → (parent pid, name, CPU seconds so far) of every local process."""
    return {pid: (ppid, name, cpu) for pid, ppid, name, cpu in _proc_stats()}


def cpu_seconds_of(name: str) -> float:
    """CPU seconds used so far by local processes called ``name`` (e.g. postgres)."""
    return sum(cpu for _, _, n, cpu in _proc_stats() if n == name)


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds used so far by process ``root`` and its live descendants."""
    stats = list(_proc_stats())
    children: dict[int, list[int]] = {}
    for pid, ppid, _, _ in stats:
        children.setdefault(ppid, []).append(pid)
    tree, todo = set(), [root]
    while todo:
        pid = todo.pop()
        tree.add(pid)
        todo += children.get(pid, [])
    return sum(cpu for pid, _, _, cpu in stats if pid in tree)


@dataclass
class ServerProcess:
    popen: subprocess.Popen[bytes]
    log_path: Path
    port: int = 0

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def cpu_seconds(self) -> float:
        return tree_cpu_seconds(self.popen.pid)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def server_process(
    command: list[str], log_path: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> Iterator[ServerProcess]:
    """Run a gRPC server command; yield once it logged its port and health says SERVING."""
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    child_env.update(env or {})
    with log_path.open("wb") as log:
        popen = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=child_env)
    server = ServerProcess(popen, log_path)
    try:
        deadline = time.monotonic() + timeout
        while not (match := SERVING_LINE.search(log_path.read_bytes())):
            if popen.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{command[:3]} did not start:\n{server.log()}")
            time.sleep(0.05)
        server.port = int(match.group(1))
        with grpc.insecure_channel(server.target) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            request = health_pb2.HealthCheckRequest(service="")
            while health.Check(request, timeout=5).status != health_pb2.HealthCheckResponse.SERVING:
                time.sleep(0.05)
        yield server
    finally:
        popen.send_signal(signal.SIGTERM)
        try:
            popen.wait(60)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait(10)

"""Projector benchmark on PostgreSQL: catch-up, live lag and memory.

Figures, each measured several times interleaved and reported as medians, with baselines from
the same run:
- catch-up events/s of the projector (all read models) over a pre-filled store, against
  (a) pulling and decoding the same events with nothing else done, and
  (b) the eventsourcing library's ProjectionRunner with one trivial view (it commits per event,
      so it runs on a slice of the store; its rate is what is compared).
- live lag p50/p99 (append acknowledged → read models include it) under a steady append load.
- projector RSS after its first batch vs after the whole store (``--rss-events``), in a
  separate ``ledger project`` process.

Run: python -m bench.projector_bench [--events 200000] [--repeat 3] [--rss-events 1000000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from typing import Any

import psycopg
from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.projection import Projection, ProjectionRunner

from bench.common import (
    median,
    percentile,
    print_table,
    scratch_database,
    timed,
    write_json,
)
from bench.workload import interleaved_batches
from services.bootstrap import build_projector, build_store
from services.ledger.application.handler import CaseCommandHandler
from services.ledger.infrastructure.store import (
    EventsourcingStore,
    LedgerApplication,
    persistence_env,
)
from services.projector.database import ReadModelDatabase
from services.settings import Settings

EVENTS_PER_CASE = 6  # a little under the workload mix's average, so fill() reaches its target


def fill(store: EventsourcingStore, events: int, prefix: str = "B") -> int:
    handler = CaseCommandHandler(store, Settings().limits())
    for batch in interleaved_batches(max(events // EVENTS_PER_CASE, 1), 1000, prefix=prefix):
        handler.execute_batch(batch)
        if store.max_position() >= events:
            break
    return store.max_position()


def pull_and_decode(store: EventsourcingStore) -> int:
    position = count = 0
    while batch := store.read_all(position, 1000):
        position = batch[-1].position
        count += len(batch)
    return count


def project_all(settings: Settings, store: EventsourcingStore, schema: str) -> int:
    url = settings.database_url.split("?")[0] + f"?schema={schema}"
    database = ReadModelDatabase(url)
    try:
        projector = build_projector(settings, store, database)
        return projector.catch_up()
    finally:
        database.close()


class CountingView(PostgresTrackingRecorder):
    """The smallest useful view: a count of events, with the library's tracking."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.count = 0

    def increment(self, tracking: Tracking) -> None:
        with self.datastore.transaction(commit=True) as curs:
            self._insert_tracking(curs, tracking)
            self.count += 1


class CountingProjection(Projection[CountingView]):
    topics = ()

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        self.view.increment(tracking)


def projection_runner_rate(database_url: str, seconds: float) -> float:
    # persistence_env leaves PostgreSQL tables to EventsourcingStore; the runner makes its own.
    env = persistence_env(database_url, pool_size=2) | {"CREATE_TABLE": "y"}
    env["COUNTINGPROJECTION_POSTGRES_SCHEMA"] = f"runner_{time.monotonic_ns() % 10**9}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {env['COUNTINGPROJECTION_POSTGRES_SCHEMA']}")
    runner = ProjectionRunner(
        application_class=LedgerApplication,
        projection_class=CountingProjection,
        view_class=CountingView,
        env=env,
    )
    with runner:
        view = runner.projection.view
        time.sleep(1.0)  # let it start
        start_count, started = view.count, time.perf_counter()
        time.sleep(seconds)
        counted = view.count - start_count
        elapsed = time.perf_counter() - started
    return counted / elapsed


def live_lag(settings: Settings, rate: float, seconds: float) -> list[float]:
    """Append at ``rate`` events/s from another process while this one's projector follows.

    The appender is a process of its own, as the ledger is in production, so it does not share
    the projector's interpreter lock. Lag of each append: its acknowledgement (the appender's
    CLOCK_MONOTONIC, which every process on the machine shares) → the projector's commit of it.
    """
    store = build_store(settings)
    database = ReadModelDatabase(settings.database_url.split("?")[0] + "?schema=live_rm")
    projector = build_projector(settings, store, database)
    projector.catch_up()
    stop = threading.Event()
    follower = threading.Thread(target=projector.run, args=(stop, 0.05))
    follower.start()
    lags: list[float] = []
    appender = subprocess.Popen(
        [sys.executable, "-c", "import bench.projector_bench as b; b.append_steadily()",
         settings.database_url, str(rate), str(seconds)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": os.getcwd()},
    )  # fmt: skip
    try:
        assert appender.stdout is not None
        for line in appender.stdout:
            position, acked = line.split()
            if projector.wait_for_position(int(position), 5.0):
                lags.append(time.clock_gettime(time.CLOCK_MONOTONIC) - float(acked))
        if appender.wait(timeout=30) != 0:
            raise RuntimeError(
                f"the appender process failed with exit status {appender.returncode}"
            )
    finally:
        appender.kill()
        stop.set()
        store.wake_waiters()
        follower.join(timeout=30)
        database.close()
        store.close()
    return lags


def append_steadily() -> None:
    """The live-lag appender (its own process): batches of 10 commands at the given rate; prints
    ``position acknowledged_at`` for each acknowledged batch."""
    database_url, rate, seconds = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    settings = Settings(database_url=database_url)
    store = build_store(settings)
    handler = CaseCommandHandler(store, settings.limits())
    interval = 10 / rate
    deadline = time.perf_counter() + seconds
    next_at = time.perf_counter()
    for batch in interleaved_batches(int(rate * seconds), 10, seed=11, prefix="LIVE"):
        if time.perf_counter() > deadline:
            break
        results = handler.execute_batch(batch)
        acked = time.clock_gettime(time.CLOCK_MONOTONIC)
        positions = [r.position for r in results if hasattr(r, "position")]
        if positions:
            print(max(positions), acked, flush=True)
        next_at += interval
        time.sleep(max(0.0, next_at - time.perf_counter()))
    store.close()


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def projector_rss(database_url: str, events: int) -> tuple[int, int, int, float]:
    """RSS (KiB) of a `ledger project` process after its first batch, halfway, and at the end.

    Flat means the second half of the history added (next to) nothing: end / halfway ≈ 1.
    """
    store = build_store(Settings(database_url=database_url))
    filled = fill(store, events, prefix="RSS")
    store.close()
    readmodel_url = database_url.split("?", maxsplit=1)[0] + "?schema=rss_rm"
    process = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "--log-level", "WARNING", "project",
         "--database-url", database_url, "--readmodel-url", readmodel_url],
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )  # fmt: skip
    first = halfway = 0
    started = time.perf_counter()
    try:
        with psycopg.connect(database_url, autocommit=True) as conn:
            while True:
                time.sleep(0.5)
                row = (
                    conn.execute(
                        "SELECT position FROM rss_rm.rm_tracking WHERE name = 'readmodels'"
                    ).fetchone()
                    if _has_tracking(conn)
                    else None
                )
                if row and not first:
                    first = rss_kib(process.pid)
                if row and not halfway and row[0] >= filled // 2:
                    halfway = rss_kib(process.pid)
                if row and row[0] >= filled:
                    break
                if time.perf_counter() - started > 3600:
                    raise TimeoutError("projector did not catch up within an hour")
        last = rss_kib(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)
    return first, halfway, last, time.perf_counter() - started


def _has_tracking(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute("SELECT to_regclass('rss_rm.rm_tracking')").fetchone()
    return bool(row and row[0])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--runner-seconds", type=float, default=8.0)
    parser.add_argument("--live-rate", type=float, default=1000.0)
    parser.add_argument("--live-seconds", type=float, default=20.0)
    parser.add_argument("--rss-events", type=int, default=0, help="0 skips the memory figure")
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        print(f"projector_bench: ignoring options meant for another benchmark: {unknown}")

    figures: dict[str, Any] = {"events": args.events}
    with scratch_database("bench_projector") as url:
        settings = Settings(database_url=url)
        store = build_store(settings)
        count, fill_seconds = timed(lambda: fill(store, args.events))
        figures["filled_events"] = count
        figures["fill_seconds"] = fill_seconds
        print(f"filled {count} events in {fill_seconds:.1f}s", flush=True)

        pull, catchup, runner = [], [], []
        for i in range(args.repeat):
            n, s = timed(lambda: pull_and_decode(store))
            pull.append(n / s)
            n, s = timed(lambda i=i: project_all(settings, store, f"catchup_{i}"))  # type: ignore[misc]
            catchup.append(n / s)
            runner.append(projection_runner_rate(url, args.runner_seconds))
            print(
                f"round {i + 1}: pull+decode {pull[-1]:,.0f}/s, projector {catchup[-1]:,.0f}/s, "
                f"ProjectionRunner {runner[-1]:,.0f}/s",
                flush=True,
            )
        store.close()
        figures |= {
            "pull_decode_events_per_s": pull,
            "projector_events_per_s": catchup,
            "projection_runner_events_per_s": runner,
        }
        lags = live_lag(settings, args.live_rate, args.live_seconds)
        figures["live_lag_ms"] = {
            "p50": percentile(lags, 50) * 1000,
            "p99": percentile(lags, 99) * 1000,
            "samples": len(lags),
        }
        if args.rss_events:
            first, halfway, last, seconds = projector_rss(url, args.rss_events)
            figures["rss_kib"] = {
                "after_first_batch": first,
                "halfway": halfway,
                "after_all": last,
                "seconds": seconds,
            }

    p, c, r = median(pull), median(catchup), median(runner)
    rows = [
        ("projector catch-up, events/s", f"{c:,.0f}", f"pull+decode {p:,.0f}",
         f"{c / p:.2f} (goal >= 0.5)"),
        ("projector catch-up, events/s", f"{c:,.0f}", f"ProjectionRunner {r:,.0f}",
         f"{c / r:.1f}x"),
        (f"live lag p50 @ {args.live_rate:.0f} ev/s", f"{figures['live_lag_ms']['p50']:.1f} ms",
         "-", "-"),
        (f"live lag p99 @ {args.live_rate:.0f} ev/s", f"{figures['live_lag_ms']['p99']:.1f} ms",
         "-", "goal < 50 ms"),
    ]  # fmt: skip
    if args.rss_events:
        rss = figures["rss_kib"]
        rows.append(
            (f"projector RSS after {args.rss_events:,} events", f"{rss['after_all'] / 1024:.0f} MiB",
             f"halfway {rss['halfway'] / 1024:.0f} MiB (first batch "
             f"{rss['after_first_batch'] / 1024:.0f} MiB)",
             f"{rss['after_all'] / max(rss['halfway'], 1):.2f}x (goal ~1.0: flat)")
        )  # fmt: skip
    print_table(f"projector benchmark ({count:,} events, medians of {args.repeat})", rows)
    print(f"raw figures: {write_json('projector', figures)}")
    return figures


if __name__ == "__main__":
    main()

"""Write-throughput benchmark on PostgreSQL: unary commands, latency, streaming import, catch-up.

Figures, each measured ``--repeat`` times in interleaved rounds and reported as medians, next to a
baseline measured in the same run (the machine is small and shared: only same-run ratios count):

1. unary Transfer RPCs/s with ``--concurrency`` (32) in flight, durable, on PostgreSQL, every
   command recording one event (cases pre-assigned, then handed round-robin between two owners),
   against
   (A) a trivial echo service (bench.echo) on a server with identical settings (same
       ``LedgerServer`` class, same ``max_workers``, same ``--processes`` count behind one port
       started by the same runner, same client, request bytes of a real TransferRequest), and
   (B) the eventsourcing library's default path: ``LedgerApplication`` with ``--library-threads``
       (32) threads each doing load → transfer → ``app.save()``, one event per save.
2. Transfer latency p50/p99 at 1 and at ``--concurrency`` in flight (the same runs), against the
   echo service's p50/p99 at the same concurrency.
3. ImportEvents (client streaming) events/s over ``--import-commands`` commands of the benchmark
   workload in messages of ``--import-message`` commands, durable, against a psycopg binary COPY
   of the very rows the import stored into a bare table with the same columns.
4. projector catch-up events/s (bench.projector_bench's functions) against pull + decode.

The load generator is a Python grpc.aio client (N asyncio tasks over ``--channels`` channels,
each its own TCP connection) in a separate process (``python -m bench.write_bench _client
SPEC``). The servers run as child processes, one at a time, on 127.0.0.1: ``ledger serve
--processes P`` and ``python -m bench.echo --processes P`` (default P=2, sharing one port through
SO_REUSEPORT, so the kernel spreads the client's connections across them). Every run gets a fixed
warm-up and a fixed measuring window; every loop is bounded in count and time; each run uses a
fresh scratch database. Server logs go to bench/results/logs/.

Run: python -m bench.write_bench [--repeat 3] [--seconds 5] [--import-commands 100000] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import psycopg

from bench.common import (
    RESULTS,
    ServerProcess,
    cpu_seconds_of,
    median,
    percentile,
    print_table,
    scratch_database,
    server_process,
    server_url,
    timed,
    write_json,
)
from bench.echo import ECHO_METHOD
from bench.projector_bench import fill, project_all, pull_and_decode
from bench.workload import interleaved_batches
from ownership.v1 import ledger_pb2 as pb
from services.bootstrap import build_store
from services.ledger.api.rendering import batch_command, request_for
from services.ledger.application import commands as c
from services.ledger.application.handler import CaseCommandHandler
from services.ledger.application.results import CommandResult
from services.ledger.domain.case import Case, Provenance
from services.ledger.domain.values import Owner, Tier, TransferReason
from services.ledger.infrastructure.store import LedgerApplication, persistence_env
from services.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
LOGS = RESULTS / "logs"  # each server's log, kept for a look after the run
TRANSFER_METHOD = "/ownership.v1.LedgerService/Transfer"
IMPORT_METHOD = "/ownership.v1.LedgerService/ImportEvents"
OWNERS = (Owner("agent-001", "group-00"), Owner("agent-002", "group-10"))
CLIENT = (
    "Python grpc.aio client in a separate process, {n} asyncio tasks over {channels} channels "
    "(one TCP connection each)"
)
CALL_TIMEOUT = 30.0  # seconds, per RPC
MAX_ERRORS = 100  # a client run gives up after this many failed calls

FIGURES = ("unary", "import", "projector")
GOALS = {"vs_echo": 0.7, "vs_library": 3.0, "p99_vs_echo": 3.0, "vs_copy": 0.35, "vs_pull": 0.5}


# --- load generator (runs in its own process) ---------------------------------------------------


def transfer_templates(prefix: str, cases: int) -> list[tuple[bytes, bytes]]:
    """For each case, the serialized TransferRequest to the second owner and back to the first,
    without command_id (each call adds its own)."""
    templates = []
    for k in range(cases):
        pair = []
        for to_owner in (OWNERS[1], OWNERS[0]):
            command = c.Transfer(
                case_id=case_id(prefix, k),
                command_id="",
                actor="bench",
                to_owner=to_owner,
                reason=TransferReason.SHIFT_HANDOVER,
                note="bench handoff",
                warm=True,
            )
            pair.append(request_for(command).SerializeToString())
        templates.append((pair[0], pair[1]))
    return templates


def case_id(prefix: str, k: int) -> str:
    return f"{prefix}-{k:06d}"


def request_maker(prefix: str, cases: int) -> Callable[[int], bytes]:
    """Call ``n`` transfers case ``n % cases`` away from its owner (cases start with OWNERS[0])."""
    templates = transfer_templates(prefix, cases)

    def make(n: int) -> bytes:
        round_, k = divmod(n, cases)
        message = pb.TransferRequest.FromString(templates[k][round_ % 2])
        message.command_id = f"{prefix}/{n}"
        return message.SerializeToString()

    return make


async def unary_load(spec: dict[str, Any]) -> dict[str, Any]:
    """``concurrency`` tasks call one unary method back to back for warm-up + measured seconds."""
    make = request_maker(spec["prefix"], spec["cases"])
    is_echo = spec["method"] == ECHO_METHOD
    counter = itertools.count()
    latencies: list[float] = []
    tally = {"completed": 0, "events": 0, "noops": 0, "errors": 0, "calls": 0}
    error_codes: dict[str, int] = {}
    # Each channel its own TCP connection (no shared subchannel), so that with several server
    # processes on one port the kernel spreads the connections across them.
    channels = [
        grpc.aio.insecure_channel(spec["target"], options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(spec["channels"])
    ]
    try:
        for channel in channels:
            await asyncio.wait_for(channel.channel_ready(), 10)
        # bytes in, bytes out: no (de)serializers
        calls = [channel.unary_unary(spec["method"]) for channel in channels]
        cpu_started = time.process_time()
        begin = time.perf_counter()
        measure_from = begin + spec["warmup"]
        until = measure_from + spec["seconds"]

        async def worker(call: Any) -> None:
            while tally["errors"] < MAX_ERRORS:
                n = next(counter)
                if n >= spec["max_calls"] or time.perf_counter() >= until:
                    return
                request = make(n)
                started = time.perf_counter()
                try:
                    reply = await call(request, timeout=CALL_TIMEOUT)
                except grpc.aio.AioRpcError as error:
                    tally["errors"] += 1
                    code = str(error.code())
                    error_codes[code] = error_codes.get(code, 0) + 1
                    continue
                done = time.perf_counter()
                tally["calls"] += 1
                if is_echo:
                    recorded = 1 if reply == request else 0
                else:
                    recorded = pb.TransferResponse.FromString(reply).result.events_recorded
                if measure_from <= done <= until:
                    tally["completed"] += 1
                    tally["events"] += recorded
                    tally["noops"] += recorded == 0
                    if started >= measure_from:
                        latencies.append(done - started)

        await asyncio.gather(*(worker(calls[i % len(calls)]) for i in range(spec["concurrency"])))
        client_cpu = time.process_time() - cpu_started
    finally:
        for channel in channels:
            await channel.close()
    seconds = spec["seconds"]
    return {
        **tally,
        "error_codes": error_codes,
        "per_s": tally["completed"] / seconds,
        "events_per_s": tally["events"] / seconds,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "samples": len(latencies),
        "request_bytes": len(make(0)),
        "client_cpu_s": client_cpu,
    }


async def stream_import(spec: dict[str, Any], messages: list[bytes]) -> dict[str, Any]:
    """One ImportEvents call carrying every message; timed from the call to its answer."""
    async with grpc.aio.insecure_channel(spec["target"]) as channel:
        await asyncio.wait_for(channel.channel_ready(), 10)
        call = channel.stream_unary(IMPORT_METHOD)
        cpu_started, started = time.process_time(), time.perf_counter()
        reply = await call(iter(messages), timeout=spec["timeout"])
        seconds = time.perf_counter() - started
        client_cpu = time.process_time() - cpu_started
    answer = pb.ImportEventsResponse.FromString(reply)
    return {
        "seconds": seconds,
        "accepted": answer.accepted,
        "replayed": answer.replayed,
        "refused": answer.refused,
        "events_recorded": answer.events_recorded,
        "last_position": answer.last_position,
        "events_per_s": answer.events_recorded / seconds,
        "commands_per_s": (answer.accepted + answer.refused + answer.replayed) / seconds,
        "client_cpu_s": client_cpu,
    }


def client_main(spec_json: str) -> None:
    spec = json.loads(spec_json)
    if spec["kind"] == "unary":
        result = asyncio.run(unary_load(spec))
    else:
        result = asyncio.run(stream_import(spec, read_frames(sys.stdin.buffer.read())))
    print(json.dumps(result))


def run_client(
    spec: dict[str, Any], server: ServerProcess, data: bytes | None = None, timeout: float = 600
) -> Any:
    """Run the load generator in a child process; return what it measured, with the CPU seconds
    the server (all its processes) and PostgreSQL used meanwhile."""
    server_cpu, postgres_cpu = server.cpu_seconds(), cpu_seconds_of("postgres")
    process = subprocess.run(
        [sys.executable, "-m", "bench.write_bench", "_client", json.dumps(spec)],
        input=data,
        capture_output=True,
        timeout=timeout,
        check=False,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    if process.returncode != 0:
        raise RuntimeError(f"client failed ({process.returncode}):\n{process.stderr.decode()}")
    result = json.loads(process.stdout.decode().strip().splitlines()[-1])
    result["server_cpu_s"] = server.cpu_seconds() - server_cpu
    result["postgres_cpu_s"] = cpu_seconds_of("postgres") - postgres_cpu
    return result


def frames(messages: list[bytes]) -> bytes:
    return b"".join(struct.pack(">I", len(m)) + m for m in messages)


def read_frames(data: bytes) -> list[bytes]:
    messages, offset = [], 0
    while offset < len(data):
        (size,) = struct.unpack_from(">I", data, offset)
        messages.append(data[offset + 4 : offset + 4 + size])
        offset += 4 + size
    return messages


# --- servers ------------------------------------------------------------------------------------


@contextmanager
def ledger_server(args: argparse.Namespace, url: str, name: str) -> Iterator[ServerProcess]:
    """``ledger serve`` (the ledger service only) with the benchmark's server settings."""
    command = [str(Path(sys.executable).with_name("ledger")), "serve", "--host", "127.0.0.1",
               "--port", "0", "--database-url", url, "--services", "ledger",
               "--processes", str(args.processes)]  # fmt: skip
    env = {"LEDGER_MAX_WORKERS": str(args.max_workers)}
    with server_process(command, LOGS / f"{name}.log", env) as server:
        yield server


@contextmanager
def echo_server(args: argparse.Namespace, name: str) -> Iterator[ServerProcess]:
    """bench.echo with the same server settings as ``ledger_server``."""
    command = [sys.executable, "-m", "bench.echo", "--port", "0", "--processes",
               str(args.processes), "--max-workers", str(args.max_workers)]  # fmt: skip
    with server_process(command, LOGS / f"{name}.log", {"PYTHONPATH": str(ROOT)}) as server:
        yield server


def commands_per_commit(url: str, prefix: str) -> float:
    """Commands per append transaction among the commands whose id starts with ``prefix``: rows
    written by one transaction share its ``now()``, their ``recorded_at``."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT recorded_at) FROM ledger_commands "
            "WHERE command_id LIKE %s AND command_id NOT LIKE '%%/open'",
            [prefix + "/%"],
        ).fetchone()
    assert row is not None
    return float(row[0]) / max(int(row[1]), 1)


def pre_assign(url: str, prefix: str, cases: int) -> None:
    """Open ``cases`` cases with OWNERS[0], in batches through a handler of this process (the
    servers meet them first in the measured run's warm-up)."""
    settings = Settings(database_url=url)
    store = build_store(settings)
    try:
        _pre_assign(CaseCommandHandler(store, settings.limits()), prefix, cases)
    finally:
        store.close()


def _pre_assign(handler: CaseCommandHandler, prefix: str, cases: int) -> None:
    now = datetime.now(UTC)
    ids = [case_id(prefix, k) for k in range(cases)]
    for start in range(0, cases, 1000):
        commands = [
            c.Assign(case_id=i, command_id=f"{i}/open", actor="bench", owner=OWNERS[0],
                     tier=Tier.L1, occurred_at=now)
            for i in ids[start : start + 1000]
        ]  # fmt: skip
        outcomes = handler.execute_batch(commands)
        refused = [o for o in outcomes if not isinstance(o, CommandResult)]
        if refused:
            raise RuntimeError(f"pre-assign refused: {refused[:3]}")


# --- figure 1 and 2: unary ----------------------------------------------------------------------


def unary_spec(args: argparse.Namespace, target: str, method: str, prefix: str, n: int) -> Any:
    return {
        "kind": "unary",
        "target": target,
        "method": method,
        "prefix": prefix,
        "cases": args.cases,
        "concurrency": n,
        "channels": args.channels,
        "warmup": args.warmup,
        "seconds": args.seconds,
        "max_calls": int((args.warmup + args.seconds) * 200_000),
    }


def ledger_runs(args: argparse.Namespace, round_: int) -> dict[str, Any]:
    results = {}
    for n in dict.fromkeys((args.concurrency, 1)):
        prefix = f"U{round_}C{n}"
        with scratch_database("bench_write_unary") as url:
            with ledger_server(args, url, f"ledger-{prefix}") as server:
                pre_assign(url, prefix, args.cases)
                results[f"@{n}"] = run_client(
                    unary_spec(args, server.target, TRANSFER_METHOD, prefix, n),
                    server,
                    timeout=args.warmup + args.seconds + 120,
                )
            results[f"@{n}"]["group_commit_batch"] = commands_per_commit(url, prefix)
    return results


def echo_runs(args: argparse.Namespace, round_: int) -> dict[str, Any]:
    with echo_server(args, f"echo-{round_}") as server:
        return {
            f"@{n}": run_client(
                unary_spec(args, server.target, ECHO_METHOD, f"U{round_}C{n}", n),
                server,
                timeout=args.warmup + args.seconds + 120,
            )
            for n in dict.fromkeys((args.concurrency, 1))
        }


def library_run(args: argparse.Namespace, round_: int) -> dict[str, Any]:
    """The library's default write path: one aggregate loaded, changed and saved per event."""
    with scratch_database("bench_write_library") as url:
        # persistence_env leaves PostgreSQL tables to EventsourcingStore; the library makes its own.
        env = persistence_env(url, pool_size=args.library_threads) | {"CREATE_TABLE": "y"}
        app = LedgerApplication(env=env)
        try:
            return _library_load(app, args, f"L{round_}")
        finally:
            app.close()


def _library_load(app: LedgerApplication, args: argparse.Namespace, prefix: str) -> dict[str, Any]:
    threads = args.library_threads
    ids = [case_id(prefix, k) for k in range(max(args.cases, threads))]
    opened = datetime.now(UTC)
    created = [
        Case.open(i, OWNERS[0], Tier.L1, "", Provenance(opened, "bench", f"{i}/open")) for i in ids
    ]
    for start in range(0, len(created), 500):
        app.save(*created[start : start + 500])
    stamps: list[list[float]] = [[] for _ in range(threads)]
    errors: list[str] = []
    measure_from = time.perf_counter() + args.warmup
    until = measure_from + args.seconds
    max_saves = int((args.warmup + args.seconds) * 100_000)

    def work(mine: list[str], done: list[float]) -> None:
        for k in range(max_saves):
            if time.perf_counter() >= until or len(errors) >= MAX_ERRORS:
                return
            cid = mine[k % len(mine)]
            try:
                case: Case = app.repository.get(cid)
                to_owner = OWNERS[1] if case.owner == OWNERS[0] else OWNERS[0]
                provenance = Provenance(datetime.now(UTC), "bench", f"{cid}/{k}")
                case.transfer(
                    to_owner, TransferReason.SHIFT_HANDOVER, None, "bench handoff", None, True,
                    provenance,
                )  # fmt: skip
                app.save(case)
            except Exception as error:
                errors.append(repr(error))
                continue
            done.append(time.perf_counter())

    cpu, postgres_cpu = time.process_time(), cpu_seconds_of("postgres")
    workers = [
        threading.Thread(target=work, args=(ids[i::threads], stamps[i]), name=f"library-{i}")
        for i in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=args.warmup + args.seconds + 60)
    cpu, postgres_cpu = time.process_time() - cpu, cpu_seconds_of("postgres") - postgres_cpu
    saved = sum(measure_from <= t <= until for done in stamps for t in done)
    return {
        "events_per_s": saved / args.seconds,
        "saves": saved,
        "all_saves": sum(len(done) for done in stamps),
        "process_cpu_s": cpu,
        "postgres_cpu_s": postgres_cpu,
        "errors": errors[:5],
    }


# --- figure 3: import ---------------------------------------------------------------------------


def import_messages(commands: int, per_message: int) -> list[bytes]:
    """The benchmark workload's first ``commands`` commands, as ImportEvents messages."""
    messages: list[bytes] = []
    left = commands
    for batch in interleaved_batches(commands // 4 + 1, per_message, prefix="IMP"):
        taken = batch[:left]
        messages.append(
            pb.ImportEventsRequest(commands=[batch_command(x) for x in taken]).SerializeToString()
        )
        left -= len(taken)
        if left <= 0:
            break
    return messages


def import_run(args: argparse.Namespace, data: bytes, url: str, round_: int) -> dict[str, Any]:
    with ledger_server(args, url, f"ledger-import-{round_}") as server:
        spec = {"kind": "import", "target": server.target, "timeout": 900}
        return run_client(spec, server, data, timeout=960)


def stored_rows(url: str) -> list[tuple[str, int, str, bytes]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT originator_id, originator_version, topic, state FROM ledger_events "
            "ORDER BY notification_id"
        ).fetchall()
    return [(str(r[0]), int(r[1]), str(r[2]), bytes(r[3])) for r in rows]


def copy_rate(url: str, rows: list[tuple[str, int, str, bytes]], table: str) -> float:
    """Rows/s of one binary COPY of ``rows`` into a bare table, committed."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            f"CREATE TABLE {table} (originator_id text, originator_version int8, topic text, "
            "state bytea)"
        )

        def copy() -> int:
            with conn.transaction(), conn.cursor() as cursor:
                statement = (
                    f"COPY {table} (originator_id, originator_version, topic, state) "
                    "FROM STDIN (FORMAT BINARY)"
                )
                with cursor.copy(statement) as writer:
                    writer.set_types(["text", "int8", "text", "bytea"])
                    for row in rows:
                        writer.write_row(row)
            return len(rows)

        count, seconds = timed(copy)
        stored = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        assert stored is not None and stored[0] == count
    return count / seconds


# --- main ---------------------------------------------------------------------------------------


def cpu_per(runs: list[Any], unit: str, keys: dict[str, str]) -> dict[str, float]:
    """Median CPU ms per ``unit`` (call, save or event) over the runs."""
    return {
        label: median([r[key] / max(r[unit], 1) * 1000 for r in runs])
        for label, key in keys.items()
    }


def cpu_breakdown(
    ledger_r: list[Any], echo_r: list[Any], library_r: list[Any], hi: str
) -> dict[str, dict[str, float]]:
    """Where the CPU went, per call (unary) or per save (library)."""
    rpc = {"server": "server_cpu_s", "client": "client_cpu_s", "postgres": "postgres_cpu_s"}
    return {
        f"ledger Transfer {hi}": cpu_per([r[hi] for r in ledger_r], "calls", rpc),
        f"echo {hi}": cpu_per([r[hi] for r in echo_r], "calls", rpc),
        "library save()": cpu_per(
            library_r, "all_saves", {"process": "process_cpu_s", "postgres": "postgres_cpu_s"}
        ),
    }


def ratio_cell(value: float, goal: float, higher_is_better: bool = True, unit: str = "") -> str:
    met = value >= goal if higher_is_better else value <= goal
    sign = ">=" if higher_is_better else "<="
    return f"{value:.2f}{unit} (goal {sign} {goal}{unit}) {'met' if met else 'MISSED'}"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds per figure")
    parser.add_argument("--seconds", type=float, default=5.0, help="measuring window per run")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up before each window")
    parser.add_argument("--concurrency", type=int, default=32, help="calls in flight")
    parser.add_argument("--cases", type=int, default=2000, help="pre-assigned cases per run")
    parser.add_argument("--max-workers", type=int, default=32, help="gRPC threads per process")
    parser.add_argument(
        "--processes", type=int, default=2, help="server processes (ledger and echo alike)"
    )
    parser.add_argument(
        "--channels", type=int, default=0, help="client channels (default: 8 per server process)"
    )
    parser.add_argument("--library-threads", type=int, default=32)
    parser.add_argument("--import-commands", type=int, default=100_000)
    parser.add_argument("--import-message", type=int, default=500, help="commands per message")
    parser.add_argument("--projector-events", type=int, default=50_000)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument(
        "--only",
        default=",".join(FIGURES),
        help=f"comma-separated figures to measure, of {', '.join(FIGURES)} (default: all)",
    )
    # `make bench` hands the same BENCH_ARGS to every benchmark: leave the others' options to them.
    args, others = parser.parse_known_args(argv)
    if others:
        print(f"write_bench: ignoring {others} (options of other benchmarks)")
    args.channels = args.channels or 8 * args.processes
    args.only = set(args.only.split(","))
    if args.only - set(FIGURES):
        parser.error(
            f"--only takes {', '.join(FIGURES)}, not {', '.join(args.only - set(FIGURES))}"
        )
    if args.quick:
        args.repeat, args.seconds, args.warmup, args.cases = 1, 1.0, 0.3, 200
        args.import_commands, args.projector_events = 5000, 3000
    return args


def durability() -> dict[str, str]:
    with psycopg.connect(server_url()) as conn:
        return {
            name: str(conn.execute(f"SHOW {name}").fetchone()[0])  # type: ignore[index]
            for name in ("fsync", "synchronous_commit", "full_page_writes", "wal_sync_method")
        }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_client"]:
        client_main(argv[1])
        return {}
    args = parse_args(argv)
    LOGS.mkdir(parents=True, exist_ok=True)
    client = CLIENT.format(n=args.concurrency, channels=args.channels)
    figures: dict[str, Any] = {
        "config": dict(vars(args)),
        "client": client,
        "postgres": durability(),
    }
    print(f"client: {client}; servers (ledger and echo alike): {args.processes} process(es) "
          f"sharing one port, max_workers={args.max_workers} each")  # fmt: skip
    print(f"postgres: {figures['postgres']}", flush=True)

    figures["config"]["only"] = sorted(args.only)
    rows_out: list[tuple[str, str, str, str]] = []
    figures["medians"], figures["ratios"], figures["cpu_ms"] = {}, {}, {}
    if "unary" in args.only:
        unary_figures(args, figures, rows_out)
    if "import" in args.only:
        import_figures(args, figures, rows_out)
    if "projector" in args.only:
        projector_figures(args, figures, rows_out)
    print_table(f"write benchmark (PostgreSQL, medians of {args.repeat}; client: {client})",
                rows_out)  # fmt: skip
    print("\nCPU per call or event, ms (median over rounds; server = all server processes, postgres = local "
          "postgres processes; warm-up included):")  # fmt: skip
    for name, parts in figures["cpu_ms"].items():
        print(f"  {name:<28}" + "  ".join(f"{k} {v:.3f}" for k, v in parts.items()))
    print(f"raw figures: {write_json('write', figures)}")
    return figures


def unary_figures(
    args: argparse.Namespace, figures: dict[str, Any], rows_out: list[tuple[str, str, str, str]]
) -> None:
    """Figures 1 and 2: ledger, echo and library runs, in an order that rotates every round."""
    n = args.concurrency
    hi = f"@{n}"
    ledger_r: list[dict[str, Any]] = []
    echo_r: list[dict[str, Any]] = []
    library_r: list[dict[str, Any]] = []
    runs: list[tuple[Callable[[argparse.Namespace, int], dict[str, Any]], list[Any]]] = [
        (ledger_runs, ledger_r),
        (echo_runs, echo_r),
        (library_run, library_r),
    ]
    for i in range(args.repeat):
        for run, into in runs[i % 3 :] + runs[: i % 3]:
            into.append(run(args, i))
        lg, ec, lb = ledger_r[-1], echo_r[-1], library_r[-1]
        print(
            f"unary round {i + 1}: ledger {lg[hi]['per_s']:,.0f}/s "
            f"(p99 {lg[hi]['p99_ms']:.1f} ms, {lg[hi]['group_commit_batch']:.1f} per commit), "
            f"echo {ec[hi]['per_s']:,.0f}/s "
            f"(p99 {ec[hi]['p99_ms']:.1f} ms), library {lb['events_per_s']:,.0f} ev/s; "
            f"@1: ledger p50 {lg['@1']['p50_ms']:.2f} ms, echo p50 {ec['@1']['p50_ms']:.2f} ms",
            flush=True,
        )
        for name, result in (("ledger", lg[hi]), ("ledger@1", lg["@1"]), ("echo", ec[hi])):
            if result["errors"] or (name != "echo" and result["noops"]):
                print(f"  warning: {name}: {result['errors']} errors {result['error_codes']}, "
                      f"{result['noops']} calls recorded no event")  # fmt: skip
        if lb["errors"]:
            print(f"  warning: library: {lb['errors']}")
    figures["unary"] = {"ledger": ledger_r, "echo": echo_r, "library": library_r}
    led = median([r[hi]["per_s"] for r in ledger_r])
    echo = median([r[hi]["per_s"] for r in echo_r])
    lib = median([r["events_per_s"] for r in library_r])
    lat = {
        (who, k, q): median([r[f"@{k}"][f"{q}_ms"] for r in runs_])
        for who, runs_ in (("ledger", ledger_r), ("echo", echo_r))
        for k in (1, n)
        for q in ("p50", "p99")
    }
    rows_out += [
        (f"Transfer RPCs/s @{n} in flight (durable)", f"{led:,.0f}", f"echo {echo:,.0f}/s",
         ratio_cell(led / echo, GOALS["vs_echo"])),
        (f"Transfer events/s @{n} in flight (durable)", f"{led:,.0f}",
         f"library save() x{args.library_threads} threads {lib:,.0f} ev/s",
         ratio_cell(led / lib, GOALS["vs_library"], unit="x")),
    ]  # fmt: skip
    for k in (1, n):
        for q in ("p50", "p99"):
            ledger_ms, echo_ms = lat["ledger", k, q], lat["echo", k, q]
            goal = (
                ratio_cell(ledger_ms / echo_ms, GOALS["p99_vs_echo"], False, "x")
                if (k, q) == (n, "p99")
                else f"{ledger_ms / echo_ms:.1f}x"
            )
            rows_out.append((f"Transfer latency {q} @{k} in flight", f"{ledger_ms:.2f} ms",
                             f"echo {echo_ms:.2f} ms", goal))  # fmt: skip
    figures["medians"] |= {
        "ledger_rpcs_per_s": led,
        "echo_rpcs_per_s": echo,
        "library_events_per_s": lib,
        "latency_ms": {f"{who}@{k}.{q}": v for (who, k, q), v in lat.items()},
    }
    figures["ratios"] |= {
        "ledger_vs_echo": led / echo,
        "ledger_vs_library": led / lib if lib else float("nan"),
        "p99_vs_echo_p99": lat["ledger", n, "p99"] / lat["echo", n, "p99"],
    }
    figures["cpu_ms"] |= cpu_breakdown(ledger_r, echo_r, library_r, hi)


def import_figures(
    args: argparse.Namespace, figures: dict[str, Any], rows_out: list[tuple[str, str, str, str]]
) -> None:
    """Figure 3: import, then COPY of the rows it stored, each round in a fresh database."""
    messages = import_messages(args.import_commands, args.import_message)
    data = frames(messages)
    imports: list[dict[str, Any]] = []
    copies: list[float] = []
    rows: list[tuple[str, int, str, bytes]] = []
    for i in range(args.repeat):
        with scratch_database("bench_write_import") as url:
            imports.append(import_run(args, data, url, i))
            if not rows:
                rows = stored_rows(url)
            if len(rows) != imports[-1]["events_recorded"]:
                raise RuntimeError(
                    f"import stored {len(rows)} rows but reported {imports[-1]['events_recorded']}"
                )
            copies.append(copy_rate(url, rows, f"bare_copy_{i}"))
        print(
            f"import round {i + 1}: ImportEvents {imports[-1]['events_per_s']:,.0f} events/s "
            f"({imports[-1]['accepted']:,} accepted, {imports[-1]['refused']} refused), "
            f"COPY {copies[-1]:,.0f} rows/s",
            flush=True,
        )
    figures["import"] = {"messages": len(messages), "rows": len(rows), "runs": imports,
                         "copy_rows_per_s": copies}  # fmt: skip
    imp = median([r["events_per_s"] for r in imports])
    cop = median(copies)
    rows_out.append(
        (f"ImportEvents events/s ({len(rows):,} events, durable)", f"{imp:,.0f}",
         f"binary COPY {cop:,.0f} rows/s", ratio_cell(imp / cop, GOALS["vs_copy"]))
    )  # fmt: skip
    figures["medians"] |= {"import_events_per_s": imp, "copy_rows_per_s": cop}
    figures["ratios"] |= {"import_vs_copy": imp / cop}
    rpc = {"server": "server_cpu_s", "client": "client_cpu_s", "postgres": "postgres_cpu_s"}
    figures["cpu_ms"]["ImportEvents, per event"] = cpu_per(imports, "events_recorded", rpc)


def projector_figures(
    args: argparse.Namespace, figures: dict[str, Any], rows_out: list[tuple[str, str, str, str]]
) -> None:
    """Figure 4: the projector's catch-up, with bench.projector_bench's own functions."""
    with scratch_database("bench_write_projector") as url:
        settings = Settings(database_url=url)
        store = build_store(settings)
        try:
            filled = fill(store, args.projector_events)
            pulls, catchups = [], []
            for i in range(args.repeat):
                count, seconds = timed(lambda: pull_and_decode(store))
                pulls.append(count / seconds)
                count, seconds = timed(lambda i=i: project_all(settings, store, f"wb_catchup_{i}"))  # type: ignore[misc]
                catchups.append(count / seconds)
                print(f"projector round {i + 1}: catch-up {catchups[-1]:,.0f}/s, "
                      f"pull+decode {pulls[-1]:,.0f}/s", flush=True)  # fmt: skip
        finally:
            store.close()
    figures["projector"] = {"events": filled, "catchup_per_s": catchups, "pull_decode_per_s": pulls}
    cat, pul = median(catchups), median(pulls)
    rows_out.append(
        (f"projector catch-up events/s ({filled:,} events)", f"{cat:,.0f}",
         f"pull+decode {pul:,.0f}/s", ratio_cell(cat / pul, GOALS["vs_pull"]))
    )  # fmt: skip
    figures["medians"] |= {"projector_catchup_per_s": cat, "pull_decode_per_s": pul}
    figures["ratios"] |= {"catchup_vs_pull": cat / pul}


if __name__ == "__main__":
    main()

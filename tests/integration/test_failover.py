"""A PostgreSQL failover in the middle of heavy writing loses and duplicates nothing acknowledged.

A primary and a synchronous streaming standby (the machine's PostgreSQL 15 binaries, see
``tests/pg_cluster.py``); a `ledger serve` process and a `ledger project` process, both on the
multi-host URL ``host1,host2 ... target_session_attrs=read-write``. Concurrent gRPC writers send
commands and retry with the same ``command_id`` on UNAVAILABLE (and on DEADLINE_EXCEEDED, which is
just as ambiguous). Mid-load the primary is SIGKILLed, every process of it at once, and the standby
is promoted by script. Then, on the new primary:

- every acknowledged command is there exactly once, with the version and position it was told;
- every refused command left no trace (no command record, no event);
- the global order is 1..N without a gap, and each case's versions are 1..n;
- the projector resumed, and its read models equal a clean rebuild.

The test prints the write-unavailability window and the acknowledged / retried counts
(``make failover`` runs it alone with the figures shown).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pytest

from ownership.v1 import ledger_pb2 as pb
from ownership.v1 import ledger_pb2_grpc
from services.bootstrap import build_store
from services.ledger.api.server import channel
from services.projector.credit import POLICIES
from services.projector.database import ReadModelDatabase
from services.projector.projector import rebuild
from services.settings import Settings
from tests.e2e.processes import running_ledger
from tests.e2e.test_global_order import describe_gaps
from tests.e2e.wire import ALICE, BOB, assign, request, transfer
from tests.integration.test_projector_crash import (
    assert_same_contents,
    children,  # noqa: F401  (fixture)
    snapshot,
    start_project,
    tracked_position,
)
from tests.pg_cluster import Cluster, Node

WRITERS = 12
LOAD_BEFORE_KILL = 3.0  # seconds of writing before the primary is killed
# Between the kill and the promote, as a failure detector would take (CloudNativePG and Patroni
# take several seconds); longer than the ledger's own reconnect retries (about 2 s), so callers
# do see UNAVAILABLE and must retry.
DETECTION_DELAY = 3.0
LOAD_AFTER_RECOVERY = 2.0  # seconds of writing after the first acknowledgement on the new primary
# An interactive caller's patience: shorter than the failover, so calls in flight at the kill
# run out and are retried while the first attempt may still be queued in the server.
CALL_DEADLINE = 2.0
GIVE_UP_AFTER = 60.0  # a writer that cannot get an answer for this long fails the test
AMBIGUOUS = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
SCHEMA = "ledger"


@dataclass
class Ack:
    case_id: str
    version: int
    position: int
    events: int
    replayed: bool
    attempts: int
    answered_at: float


@dataclass
class Tally:
    acked: dict[str, Ack] = field(default_factory=dict)
    refused: dict[str, grpc.StatusCode] = field(default_factory=dict)
    unexpected: list[str] = field(default_factory=list)
    retries: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class Writer(threading.Thread):
    """Plays case stories until told to stop; every command ends acknowledged or refused."""

    def __init__(
        self,
        number: int,
        stub: ledger_pb2_grpc.LedgerServiceStub,
        stop: threading.Event,
        tally: Tally,
    ) -> None:
        super().__init__(name=f"writer-{number}")
        self.number, self.stub, self.stop, self.tally = number, stub, stop, tally
        self.sent = 0

    def run(self) -> None:
        try:
            self.play()
        except BaseException as exc:
            with self.tally.lock:
                self.tally.unexpected.append(f"{self.name} crashed: {exc!r}")
            raise

    def play(self) -> None:
        case = 0
        while not self.stop.is_set():
            case_id = f"W{self.number:02d}-{case:05d}"
            self.send(self.stub.Assign, assign(case_id, self.next_id(case_id), ALICE))
            for step in range(1, 9):
                if self.stop.is_set():
                    break
                owner = BOB if step % 2 else ALICE
                self.send(self.stub.Transfer, transfer(case_id, self.next_id(case_id), owner))
                if step % 4 == 0:
                    # Refused by the rules (the case is not paused): it must leave no trace.
                    self.send(
                        self.stub.Resume, request(pb.ResumeRequest, case_id, self.next_id(case_id))
                    )
            case += 1

    def next_id(self, case_id: str) -> str:
        self.sent += 1
        return f"{case_id}/{self.sent}"

    def send(self, rpc: Callable[..., Any], req: Any) -> None:
        started = time.monotonic()
        attempts = 0
        while True:
            attempts += 1
            try:
                result = rpc(req, timeout=CALL_DEADLINE).result
            except grpc.RpcError as error:
                code = error.code()
                if code in AMBIGUOUS and time.monotonic() - started < GIVE_UP_AFTER:
                    with self.tally.lock:
                        self.tally.retries += 1
                    time.sleep(0.05)
                    continue  # the same command_id: idempotent
                with self.tally.lock:
                    if code == grpc.StatusCode.FAILED_PRECONDITION:
                        self.tally.refused[req.command_id] = code
                    else:
                        self.tally.unexpected.append(f"{req.command_id}: {code} {error.details()}")
                return
            with self.tally.lock:
                self.tally.acked[req.command_id] = Ack(
                    req.case_id,
                    result.version,
                    result.position,
                    result.events_recorded,
                    result.replayed,
                    attempts,
                    time.monotonic(),
                )
            return


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    with Cluster() as made:
        yield made


def _ledger_url(primary: Node, standby: Node) -> str:
    return (
        f"postgresql://postgres@127.0.0.1:{primary.port},127.0.0.1:{standby.port}/ledger"
        f"?target_session_attrs=read-write&connect_timeout=2&schema={SCHEMA}"
    )


def _stored(node: Node) -> tuple[list[tuple[int, str, int]], dict[str, tuple[str, int, int]]]:
    """(position, case, version) of every event in position order; every command record."""
    with psycopg.connect(node.conninfo("ledger"), autocommit=True) as conn:
        events = conn.execute(
            f"SELECT notification_id, originator_id, originator_version FROM {SCHEMA}.ledger_events "
            "ORDER BY notification_id"
        ).fetchall()
        commands = conn.execute(
            f"SELECT command_id, case_id, version_before, version_after FROM {SCHEMA}.ledger_commands"
        ).fetchall()
    return (
        [(int(p), str(c), int(v)) for p, c, v in events],
        {str(k): (str(c), int(b), int(a)) for k, c, b, a in commands},
    )


@pytest.mark.postgres
def test_a_failover_mid_load_loses_and_duplicates_nothing_acknowledged(
    cluster: Cluster,
    tmp_path: Path,
    children: list[Any],  # noqa: F811
) -> None:
    primary = cluster.init_primary("primary")
    standby = cluster.base_backup(primary, "standby1", standby=True)
    cluster.wait_synchronous(primary, standby)
    with psycopg.connect(primary.conninfo(), autocommit=True) as conn:
        conn.execute("CREATE DATABASE ledger")
    url = _ledger_url(primary, standby)
    readmodel_url = url.replace(f"schema={SCHEMA}", "schema=readmodels")
    small = {"LEDGER_MAX_WORKERS": "2", "LEDGER_PROJECTOR_LEADER_POLL_SECONDS": "0.5"}
    projector = start_project(url, readmodel_url, tmp_path / "project.log", settings=small)
    children.append(projector)

    tally, stop = Tally(), threading.Event()
    server_env = {"LEDGER_SERVICES": "ledger", "LEDGER_MAX_WORKERS": "16"}
    with (
        running_ledger(url, tmp_path / "ledger.log", env=server_env) as ledger,
        channel(ledger.target) as chan,
    ):
        stub = ledger_pb2_grpc.LedgerServiceStub(chan)
        writers = [Writer(n, stub, stop, tally) for n in range(WRITERS)]
        for writer in writers:
            writer.start()
        try:
            time.sleep(LOAD_BEFORE_KILL)
            acked_before = len(tally.acked)
            killed_at = time.monotonic()
            cluster.kill(primary)
            time.sleep(DETECTION_DELAY)
            cluster.promote(standby)
            promoted_at = time.monotonic()
            deadline = promoted_at + GIVE_UP_AFTER
            while not any(a.answered_at > promoted_at for a in list(tally.acked.values())):
                assert time.monotonic() < deadline, "no write succeeded on the new primary"
                assert not tally.unexpected, tally.unexpected[:5]
                time.sleep(0.01)
            time.sleep(LOAD_AFTER_RECOVERY)
        finally:
            stop.set()
            for writer in writers:
                writer.join(GIVE_UP_AFTER + 15)
        assert not any(w.is_alive() for w in writers), "a writer never got an answer"
    assert not tally.unexpected, tally.unexpected[:5]

    # --- figures -------------------------------------------------------------------------------
    answers = sorted(a.answered_at for a in tally.acked.values())
    longest_pause = max(b - a for a, b in itertools.pairwise(answers))
    retried = [a for a in tally.acked.values() if a.attempts > 1]
    replayed = sum(1 for a in tally.acked.values() if a.replayed)
    print(
        f"\nfailover: {len(tally.acked)} commands acknowledged ({acked_before} before the kill), "
        f"{len(tally.refused)} refused by the rules; {tally.retries} retries of {len(retried)} "
        f"commands, {replayed} of them answered as replays (committed, answer lost in the kill)"
        f"\nfailover: promoted {promoted_at - killed_at:.2f}s after the kill (scripted detection "
        f"delay {DETECTION_DELAY:.1f}s); writes unavailable "
        f"for {longest_pause:.2f}s (longest pause between acknowledgements); slowest retried "
        f"command took {max((a.answered_at - killed_at for a in retried), default=0):.2f}s "
        "from the kill"
    )
    assert acked_before > 100, "too little load before the kill to mean anything"
    assert retried, "no write was interrupted: the kill missed the load"

    # --- on the new primary ----------------------------------------------------------------------
    events, commands = _stored(standby)
    positions = [p for p, _, _ in events]
    assert positions == list(range(1, len(positions) + 1)), describe_gaps(positions)
    assert len({(c, v) for _, c, v in events}) == len(events), "an event is stored twice"

    versions: dict[str, list[int]] = {}
    for _, case_id, version in events:
        versions.setdefault(case_id, []).append(version)
    for case_id, seen in versions.items():
        assert seen == list(range(1, len(seen) + 1)), f"{case_id} versions {seen}"

    where = {(c, v): p for p, c, v in events}
    for command_id, ack in tally.acked.items():
        assert command_id in commands, f"acknowledged {command_id} has no command record"
        case_id, before, after = commands[command_id]
        assert (case_id, after) == (ack.case_id, ack.version), command_id
        assert after - before == ack.events, command_id
        assert where.get((case_id, after)) == ack.position, f"{command_id} moved or vanished"
    for command_id in tally.refused:
        assert command_id not in commands, f"refused {command_id} left a command record"
    # Every event belongs to exactly one acknowledged command: nothing stored that nobody asked
    # for, nothing stored twice for a retried command.
    owned = Counter(
        (case_id, version)
        for command_id, (case_id, before, after) in commands.items()
        for version in range(before + 1, after + 1)
    )
    assert set(owned) == set(where) and max(owned.values()) == 1
    assert set(commands) == set(tally.acked), "command records and acknowledgements differ"

    # --- the projector resumed on the new primary and equals a clean rebuild ----------------------
    head = positions[-1]
    server = standby.url + "/ledger"
    started = time.monotonic()
    while tracked_position(server, "readmodels") < head:
        assert projector.poll() is None, (tmp_path / "project.log").read_text(errors="replace")
        assert time.monotonic() - started < 60, "the projector did not resume after the failover"
        time.sleep(0.1)
    store = build_store(Settings(database_url=f"{server}?schema={SCHEMA}", max_workers=2))
    rebuilt, live = (
        ReadModelDatabase(f"{server}?schema=rebuilt"),
        ReadModelDatabase(f"{server}?schema=readmodels"),
    )
    try:
        assert rebuild(store, rebuilt, list(POLICIES.values())) == head
        assert_same_contents(snapshot(live), snapshot(rebuilt))
    finally:
        rebuilt.close()
        live.close()
        store.close()

"""The global order under load: gap-free, commit-ordered, the same for every reader.

Many writer threads assign cases and hand them back and forth between two owners, over a set of
cases they share (so they race on the same case). Readers started before the writers (a live
Subscribe stream and a ReadAll poller) must see every acknowledged event exactly once, in strictly
increasing positions 1..N with no gap, and exactly what ReadAll returns at the end.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from ownership.v1 import ledger_pb2 as pb
from ownership.v1 import ledger_pb2_grpc
from services.ledger.api.server import channel
from tests.e2e.processes import running_ledger
from tests.e2e.wire import ALICE, BOB

OWNERS = (ALICE, BOB)

# Refusals a writer may meet in the mix: a transfer before the case's Assign landed (NOT_FOUND), an
# Assign to the other owner of a case that exists already (FAILED_PRECONDITION), or a case under so
# much contention that the server asks for a retry (UNAVAILABLE). None of them may store anything.
REFUSALS = {
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.UNAVAILABLE,
}
CALL_TIMEOUT = 15.0


@dataclass(frozen=True)
class Ack:
    """An acknowledged command, as its answer described it."""

    writer: int
    command_id: str
    case_id: str
    version: int
    position: int
    events_recorded: int


def ack_of(result: pb.AppendResult, writer: int = -1) -> Ack:
    return Ack(
        writer,
        result.command_id,
        result.case_id,
        result.version,
        result.position,
        result.events_recorded,
    )


@dataclass
class WriterLog:
    acks: list[Ack] = field(default_factory=list)
    refused: Counter[str] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)


def event_key(event: pb.Event) -> tuple[int, str, int, str, str]:
    return (
        event.position,
        event.case_id,
        event.version,
        event.command_id,
        event.WhichOneof("payload") or "",
    )


def assign(case_id: str, command_id: str, owner: pb.Owner) -> pb.AssignRequest:
    return pb.AssignRequest(
        case_id=case_id, command_id=command_id, actor="dispatcher", owner=owner, tier=pb.TIER_L1
    )


def transfer(case_id: str, command_id: str, owner: pb.Owner) -> pb.TransferRequest:
    return pb.TransferRequest(
        case_id=case_id,
        command_id=command_id,
        actor="router",
        to_owner=owner,
        reason=pb.TRANSFER_REASON_WORKLOAD_BALANCING,
    )


def write_mix(
    stub: ledger_pb2_grpc.LedgerServiceStub,
    writer: int,
    cases: Sequence[str],
    own_cases: Sequence[str],
    commands: int,
    start: threading.Barrier,
    log: WriterLog,
) -> None:
    """Assign this writer's own cases, then transfer random shared cases between the two owners."""
    rng = random.Random(writer)
    start.wait(timeout=10)
    for n in range(commands):
        command_id = f"w{writer}-{n}"
        try:
            if n < len(own_cases):
                response = stub.Assign(
                    assign(own_cases[n], command_id, ALICE), timeout=CALL_TIMEOUT
                )
            elif rng.random() < 0.1:
                request = assign(rng.choice(cases), command_id, rng.choice(OWNERS))
                response = stub.Assign(request, timeout=CALL_TIMEOUT)
            else:
                request = transfer(rng.choice(cases), command_id, OWNERS[(n + writer) % 2])
                response = stub.Transfer(request, timeout=CALL_TIMEOUT)
        except grpc.RpcError as error:
            if error.code() in REFUSALS:
                log.refused[error.code().name] += 1
            else:
                log.unexpected.append(f"{command_id}: {error.code().name} {error.details()}")
            continue
        if response.result.command_id != command_id or response.result.replayed:
            log.unexpected.append(f"{command_id}: odd answer {response.result}")
        log.acks.append(ack_of(response.result, writer))


def run_writers(
    stubs: Sequence[ledger_pb2_grpc.LedgerServiceStub],
    writers: int,
    commands: int,
    cases: Sequence[str],
) -> list[WriterLog]:
    """``writers`` threads, writer i talking to ``stubs[i % len(stubs)]``; returns their logs."""
    per_writer = len(cases) // writers
    logs = [WriterLog() for _ in range(writers)]
    start = threading.Barrier(writers)
    threads = [
        threading.Thread(
            target=write_mix,
            args=(
                stubs[i % len(stubs)],
                i,
                cases,
                cases[i * per_writer : (i + 1) * per_writer],
                commands,
                start,
                logs[i],
            ),
            name=f"writer-{i}",
            daemon=True,
        )
        for i in range(writers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a writer thread is stuck"
    return logs


class Tail:
    """A Subscribe stream drained by a background thread."""

    def __init__(
        self, stub: ledger_pb2_grpc.LedgerServiceStub, after_position: int = 0, timeout: float = 90
    ) -> None:
        self.events: list[pb.Event] = []
        self.messages = 0
        self.code: grpc.StatusCode | None = None
        self.finished = False
        self._changed = threading.Condition()
        self._call = stub.Subscribe(
            pb.SubscribeRequest(after_position=after_position), timeout=timeout
        )
        self._thread = threading.Thread(target=self._drain, name="tail", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        try:
            for message in self._call:
                with self._changed:
                    self.events.extend(message.events)
                    self.messages += 1
                    self._changed.notify_all()
            self.code = grpc.StatusCode.OK
        except grpc.RpcError as error:
            self.code = error.code()
        finally:
            with self._changed:
                self.finished = True
                self._changed.notify_all()

    def wait_for(self, done: Callable[[list[pb.Event]], bool], timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: done(self.events) or self.finished, timeout)

    def wait_for_position(self, position: int, timeout: float) -> bool:
        return self.wait_for(
            lambda events: bool(events) and events[-1].position >= position, timeout
        )

    def wait_finished(self, timeout: float) -> bool:
        self._thread.join(timeout)
        return self.finished

    def close(self) -> None:
        self._call.cancel()
        self._thread.join(timeout=10)


class Poller:
    """Tails the global order with ReadAll(after_position=last) until told to stop and drained."""

    def __init__(self, stub: ledger_pb2_grpc.LedgerServiceStub, limit: int = 0) -> None:
        self.events: list[pb.Event] = []
        self.errors: list[str] = []
        self._stub = stub
        self._limit = limit
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="poller", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        deadline = time.monotonic() + 90
        last = 0
        while time.monotonic() < deadline:
            stopping = self._stop.is_set()  # read before the read: a drained read after it ends
            try:
                answer = self._stub.ReadAll(
                    pb.ReadAllRequest(after_position=last, limit=self._limit), timeout=CALL_TIMEOUT
                )
            except grpc.RpcError as error:
                self.errors.append(f"{error.code().name}: {error.details()}")
                return
            if answer.events:
                self.events.extend(answer.events)
                last = answer.events[-1].position
            elif stopping:
                return
            else:
                time.sleep(0.01)
        self.errors.append("poller ran out of time")

    def stop(self, timeout: float = 15) -> None:
        self._stop.set()
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the ReadAll poller did not finish"


def read_everything(stub: ledger_pb2_grpc.LedgerServiceStub) -> tuple[list[pb.Event], int]:
    """The whole global order via ReadAll pages, and the head position of the first page."""
    events: list[pb.Event] = []
    head = None
    for _ in range(1000):
        answer = stub.ReadAll(
            pb.ReadAllRequest(after_position=events[-1].position if events else 0),
            timeout=CALL_TIMEOUT,
        )
        head = answer.head_position if head is None else head
        if not answer.events:
            return events, head
        events.extend(answer.events)
    raise AssertionError("ReadAll never reached the end")


def describe_gaps(positions: Sequence[int]) -> str:
    seen = Counter(positions)
    top = max(positions, default=0)
    missing = [p for p in range(1, top + 1) if p not in seen]
    doubled = [p for p, n in seen.items() if n > 1]
    backwards = [b for a, b in itertools.pairwise(positions) if b <= a]
    return (
        f"{len(positions)} events up to position {top}; missing {missing[:20]} "
        f"({len(missing)} in all); doubled {doubled[:20]}; out of order at {backwards[:20]}"
    )


def assert_one_gap_free_history(
    seen: Sequence[pb.Event], stored: Sequence[pb.Event], head: int, acks: Sequence[Ack]
) -> None:
    """``seen`` is exactly ``stored``, which holds every ack and nothing else, at positions 1..N."""
    positions = [e.position for e in stored]
    assert all(a < b for a, b in itertools.pairwise(positions)), describe_gaps(positions)
    seen_positions = [e.position for e in seen]
    assert seen_positions == positions, "the subscriber saw: " + describe_gaps(seen_positions)
    assert [event_key(e) for e in seen] == [event_key(e) for e in stored]

    versions: dict[str, list[int]] = defaultdict(list)
    for event in stored:
        versions[event.case_id].append(event.version)
    for case_id, case_versions in versions.items():
        assert case_versions == list(range(1, len(case_versions) + 1)), (case_id, case_versions)

    by_position = {e.position: e for e in stored}
    seen_pairs = {(e.case_id, e.version) for e in seen}
    for ack in acks:
        event = by_position.get(ack.position)
        assert event is not None, f"acknowledged {ack} is not stored"
        assert (event.case_id, event.version) == (ack.case_id, ack.version), (ack, event)
        assert (ack.case_id, ack.version) in seen_pairs
        if ack.events_recorded:
            assert event.command_id == ack.command_id, (ack, event)

    written = Counter(e.command_id for e in stored)
    reported = {a.command_id: a.events_recorded for a in acks if a.events_recorded}
    assert dict(written) == reported, "stored events and acknowledged commands differ"

    # Last, the gap-free promise itself: on a fresh store the positions are exactly 1..N.
    assert positions == list(range(1, len(stored) + 1)), (
        f"positions are not gap-free: {describe_gaps(positions)}; head_position {head}"
    )
    assert head == len(stored)


def assert_commit_order_per_writer(acks: Sequence[Ack]) -> None:
    """A command acknowledged before the next one was sent sits earlier in the global order."""
    by_writer: dict[int, list[int]] = defaultdict(list)
    for ack in acks:
        if ack.events_recorded:
            by_writer[ack.writer].append(ack.position)
    for writer, positions in by_writer.items():
        assert positions == sorted(positions) and len(set(positions)) == len(positions), writer


def test_concurrent_writers_produce_one_gap_free_order_that_every_reader_sees_once(
    stub: ledger_pb2_grpc.LedgerServiceStub,
) -> None:
    cases = [f"GO-{n:02d}" for n in range(16)]
    tail = Tail(stub)
    try:
        sentinel = stub.Assign(assign("GO-SENTINEL", "sentinel", ALICE), timeout=CALL_TIMEOUT)
        assert tail.wait_for_position(1, timeout=5), "the subscriber never went live"
        poller = Poller(stub, limit=7)  # small pages: the poller crosses many page boundaries

        logs = run_writers([stub], writers=8, commands=60, cases=cases)

        poller.stop()
        stored, head = read_everything(stub)
        assert tail.wait_for_position(head, timeout=10), (
            f"the subscriber stopped at {tail.events[-1].position if tail.events else 0} of {head}"
        )
    finally:
        tail.close()

    acks = [ack_of(sentinel.result)] + [a for log in logs for a in log.acks]
    assert [u for log in logs for u in log.unexpected] == []
    assert len(acks) > 300, "too few commands were acknowledged to mean anything"
    assert sum(a.events_recorded for a in acks) > 150
    assert poller.errors == []
    assert [event_key(e) for e in poller.events] == [event_key(e) for e in stored]
    assert_one_gap_free_history(tail.events, stored, head, acks)
    assert_commit_order_per_writer(acks)


def test_writers_racing_on_one_case_leave_no_hole_in_the_positions(
    stub: ledger_pb2_grpc.LedgerServiceStub,
) -> None:
    """Losing a race on a case (and being retried by the server) must not burn a position."""
    opened = stub.Assign(assign("HOT", "hot-open", ALICE), timeout=CALL_TIMEOUT)
    acks = [ack_of(opened.result)]
    failures: list[str] = []
    start = threading.Barrier(4)

    def race(writer: int) -> None:
        start.wait(timeout=10)
        for n in range(8):
            owner = pb.Owner(agent_id=f"agent-{writer}-{n}", group_id="l2")
            try:
                answer = stub.Transfer(
                    transfer("HOT", f"hot-{writer}-{n}", owner), timeout=CALL_TIMEOUT
                )
            except grpc.RpcError as error:
                failures.append(error.code().name)
                continue
            acks.append(ack_of(answer.result, writer))

    threads = [threading.Thread(target=race, args=(w,), daemon=True) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads)

    assert set(failures) <= {"UNAVAILABLE"}, failures
    stored, head = read_everything(stub)
    assert [e.version for e in stored] == list(range(1, len(stored) + 1))
    assert len(stored) == len(acks) and len(acks) > 20
    assert {(e.version, e.position) for e in stored} == {(a.version, a.position) for a in acks}
    assert [e.position for e in stored] == list(range(1, len(stored) + 1)), (
        f"positions are not gap-free: {describe_gaps([e.position for e in stored])}; "
        f"head_position {head}"
    )


def test_subscribe_delivers_a_new_event_live(stub: ledger_pb2_grpc.LedgerServiceStub) -> None:
    for n in range(3):
        stub.Assign(assign(f"LIVE-{n}", f"live-{n}", ALICE), timeout=CALL_TIMEOUT)
    tail = Tail(stub)
    try:
        assert tail.wait_for_position(3, timeout=5)
        assert [e.position for e in tail.events] == [1, 2, 3]

        sent = time.monotonic()
        answer = stub.Transfer(transfer("LIVE-1", "live-move", BOB), timeout=CALL_TIMEOUT)
        assert tail.wait_for_position(4, timeout=3), "the new event did not arrive within 3 s"
        latency = time.monotonic() - sent
    finally:
        tail.close()
    assert [e.position for e in tail.events] == [1, 2, 3, 4]
    live = tail.events[-1]
    assert (live.case_id, live.version, live.position) == ("LIVE-1", 2, answer.result.position)
    assert live.command_id == "live-move" and live.transferred.to_owner == BOB
    assert latency < 3


def test_subscribe_from_a_middle_position_gets_only_later_events(
    stub: ledger_pb2_grpc.LedgerServiceStub,
) -> None:
    positions = [
        stub.Assign(assign(f"MID-{n}", f"mid-{n}", ALICE), timeout=CALL_TIMEOUT).result.position
        for n in range(5)
    ]
    assert positions == [1, 2, 3, 4, 5]
    tail = Tail(stub, after_position=3)
    try:
        assert tail.wait_for_position(5, timeout=5)
        stub.Transfer(transfer("MID-0", "mid-move", BOB), timeout=CALL_TIMEOUT)
        assert tail.wait_for_position(6, timeout=5)
        # Nothing more is due: give a stray duplicate or an early event the chance to show up.
        time.sleep(0.3)
    finally:
        tail.close()
    assert [(e.position, e.case_id, e.version) for e in tail.events] == [
        (4, "MID-3", 1),
        (5, "MID-4", 1),
        (6, "MID-0", 2),
    ]


def test_two_server_processes_on_one_postgres_share_one_gap_free_order(
    postgres_url: str, tmp_path: Path
) -> None:
    cases = [f"XP-{n:02d}" for n in range(12)]
    # Tables are created at startup, which is not safe to run concurrently: one after the other.
    with (
        running_ledger(postgres_url, tmp_path / "a.log") as a,
        running_ledger(postgres_url, tmp_path / "b.log") as b,
        channel(a.target) as chan_a,
        channel(b.target) as chan_b,
    ):
        stub_a = ledger_pb2_grpc.LedgerServiceStub(chan_a)
        stub_b = ledger_pb2_grpc.LedgerServiceStub(chan_b)
        tail = Tail(stub_a)
        try:
            # Written through B, seen on A: the subscription is live across processes.
            sentinel = stub_b.Assign(assign("XP-SENTINEL", "sentinel", ALICE), timeout=CALL_TIMEOUT)
            assert tail.wait_for_position(1, timeout=5), "A's subscriber missed B's write"

            logs = run_writers([stub_a, stub_b], writers=6, commands=40, cases=cases)

            stored, head = read_everything(stub_a)
            stored_b, _ = read_everything(stub_b)
            assert tail.wait_for_position(head, timeout=10), (
                f"A's subscriber stopped at "
                f"{tail.events[-1].position if tail.events else 0} of {head}"
            )
            # Nothing beyond the head may show up (no duplicates, no replays).
            time.sleep(0.6)
        finally:
            tail.close()
        assert a.running() and b.running(), a.log() + b.log()

    acks = [ack_of(sentinel.result)] + [a for log in logs for a in log.acks]
    assert [u for log in logs for u in log.unexpected] == []
    writing = {a.writer % 2 for a in acks if a.events_recorded and a.writer >= 0}
    assert writing == {0, 1}, "both processes wrote"
    assert len(acks) > 150
    assert [event_key(e) for e in stored_b] == [event_key(e) for e in stored]
    assert_one_gap_free_history(tail.events, stored, head, acks)
    assert_commit_order_per_writer(acks)

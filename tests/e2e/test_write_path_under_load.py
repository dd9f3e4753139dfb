"""The group-commit write path under concurrent load, with every kind of awkward request in the mix.

Sixteen writer threads send single commands over twenty shared cases while a Subscribe stream tails
the global order. Among plain commands they send the same request twice at the same instant (two
threads of a pair meet at a barrier first), resend their own earlier requests, reuse their own
command_ids for something else, race each other for one command_id with different payloads, and
send expected_versions that are stale for sure or merely racy. Afterwards the store must hold
exactly the events of the acknowledged commands, each once, in contiguous case versions at
positions 1..N, and every answer must agree with what is stored.
"""

from __future__ import annotations

import random
import threading
import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from ownership.v1 import ledger_pb2 as pb
from ownership.v1 import ledger_pb2_grpc
from services.bootstrap import Ledger
from services.ledger.api.server import CLIENT_SERVICE_CONFIG, channel
from tests.e2e.conftest import start_ledger
from tests.e2e.processes import processes_with_connections, running_ledger
from tests.e2e.test_global_order import Tail, assign, describe_gaps, event_key, read_everything
from tests.e2e.wire import answer

Stub = ledger_pb2_grpc.LedgerServiceStub

CALL_TIMEOUT = 15.0
OWNERS = tuple(pb.Owner(agent_id=f"owner-{k}", group_id="service-desk") for k in range(4))
EXPERTS = ("expert-a", "expert-b")
METHOD_OF: dict[type[Message], str] = {
    pb.AssignRequest: "Assign",
    pb.TransferRequest: "Transfer",
    pb.JoinSwarmRequest: "JoinSwarm",
    pb.LeaveSwarmRequest: "LeaveSwarm",
    pb.PauseRequest: "Pause",
    pb.ResumeRequest: "Resume",
}
ABORTED = grpc.StatusCode.ABORTED
ALREADY_EXISTS = grpc.StatusCode.ALREADY_EXISTS
UNAVAILABLE = grpc.StatusCode.UNAVAILABLE
# Refusals a single process may give in the mix: a rule (already paused, not in the swarm...), a
# stale expected_version, a reused command_id. Two processes may also run out of retries on a case
# under heavy concurrent change (UNAVAILABLE), which must not store anything either.
ONE_PROCESS_REFUSALS = {grpc.StatusCode.FAILED_PRECONDITION, ABORTED, ALREADY_EXISTS}
TWO_PROCESS_REFUSALS = ONE_PROCESS_REFUSALS | {UNAVAILABLE}


# --- requests -----------------------------------------------------------------------------------


def transfer(
    case_id: str, command_id: str, owner: pb.Owner, expected_version: int | None = None
) -> pb.TransferRequest:
    request = pb.TransferRequest(
        case_id=case_id,
        command_id=command_id,
        actor="router",
        to_owner=owner,
        reason=pb.TRANSFER_REASON_WORKLOAD_BALANCING,
        note="moved",
    )
    if expected_version is not None:
        request.expected_version = expected_version
    return request


def mixed_request(rng: random.Random, case_id: str, command_id: str) -> Message:
    """A plain command: it may be accepted, be a no-op, or break a rule, depending on the case."""
    kind = rng.choice(["transfer"] * 4 + ["join", "leave", "pause", "resume"])
    common = {"case_id": case_id, "command_id": command_id, "actor": "agent"}
    if kind == "transfer":
        return transfer(case_id, command_id, rng.choice(OWNERS))
    if kind == "join":
        return pb.JoinSwarmRequest(
            **common, agent_id=rng.choice(EXPERTS), role=pb.SWARM_ROLE_CONSULTANT
        )
    if kind == "leave":
        return pb.LeaveSwarmRequest(**common, agent_id=rng.choice(EXPERTS))
    if kind == "pause":
        return pb.PauseRequest(**common, reason=pb.PAUSE_REASON_AWAITING_CUSTOMER)
    return pb.ResumeRequest(**common)


def changed(request: Message) -> Message:
    """The same request with another note: a different payload under the same command_id."""
    other = type(request)()
    other.CopyFrom(request)
    other.note = "a different request under a used command_id"  # type: ignore[attr-defined]
    return other


# --- answers ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    code: grpc.StatusCode
    message: str
    reason: str
    metadata: dict[str, str]


Outcome = pb.AppendResult | Refusal


@dataclass(frozen=True)
class Sent:
    """One request and what came back."""

    writer: int
    purpose: str
    request: Any
    outcome: Outcome
    # The highest version of the request's case this writer had seen before sending.
    seen_version: int = 0

    @property
    def accepted(self) -> pb.AppendResult | None:
        return self.outcome if isinstance(self.outcome, pb.AppendResult) else None

    @property
    def refusal(self) -> Refusal | None:
        return self.outcome if isinstance(self.outcome, Refusal) else None


def send(stub: Stub, request: Message) -> Outcome:
    try:
        return getattr(stub, METHOD_OF[type(request)])(request, timeout=CALL_TIMEOUT).result  # type: ignore[no-any-return]
    except grpc.RpcError as error:
        reason, metadata = "", {}
        status = rpc_status.from_call(error)
        for detail in status.details if status is not None else ():
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason, metadata = info.reason, dict(info.metadata)
        return Refusal(error.code(), error.details() or "", reason, metadata)


def accept(stub: Stub, request: Message) -> pb.AppendResult:
    outcome = send(stub, request)
    assert isinstance(outcome, pb.AppendResult), (request, outcome)
    return outcome


# --- writers ------------------------------------------------------------------------------------


@dataclass
class Writer:
    """One client thread. Writers 2k and 2k+1 form a pair that sends some requests together."""

    number: int
    stub: Stub
    cases: Sequence[str]
    commands: int
    start: threading.Barrier
    pair: threading.Barrier
    log: list[Sent] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seen: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.number)

    def send(self, request: Any, purpose: str) -> Outcome:
        seen = self.seen.get(request.case_id, 0)
        outcome = send(self.stub, request)
        self.log.append(Sent(self.number, purpose, request, outcome, seen))
        if isinstance(outcome, pb.AppendResult):
            self.seen[request.case_id] = max(seen, outcome.version)
        elif outcome.code == ABORTED and "current_version" in outcome.metadata:
            self.seen[request.case_id] = max(seen, int(outcome.metadata["current_version"]))
        return outcome

    def own_accepted(self) -> list[Sent]:
        return [s for s in self.log if s.accepted is not None and not s.accepted.replayed]

    def current_version(self, case_id: str) -> int:
        events = self.stub.ReadCase(
            pb.ReadCaseRequest(case_id=case_id), timeout=CALL_TIMEOUT
        ).events
        version = events[-1].version if events else 0
        self.seen[case_id] = max(self.seen.get(case_id, 0), version)
        return version

    def run(self) -> None:
        try:
            self.start.wait(timeout=30)
            for n in range(self.commands):
                self.step(n)
        except Exception:
            self.errors.append(traceback.format_exc())
            self.pair.abort()

    def step(self, n: int) -> None:
        pair, slot = self.number // 2, n % 10
        if slot == 3:
            # Both writers of the pair send this very request at the same moment.
            self.pair.wait(timeout=30)
            tag = f"dup-{pair}-{n}"
            case_id = self.cases[(pair * 7 + n) % len(self.cases)]
            self.send(transfer(case_id, tag, pb.Owner(agent_id=tag, group_id="dup")), "duplicate")
            return
        if slot == 7:
            # Both writers of the pair claim one command_id, each for a request of its own.
            self.pair.wait(timeout=30)
            case_id = self.cases[(pair * 5 + n + self.number % 2) % len(self.cases)]
            owner = pb.Owner(agent_id=f"rival-{self.number}-{n}", group_id="rival")
            self.send(transfer(case_id, f"rival-{pair}-{n}", owner), "rival")
            return
        accepted = self.own_accepted()
        if slot == 5 and accepted:
            self.send(self.rng.choice(accepted).request, "resend")
            return
        if slot == 9 and accepted:
            self.send(changed(self.rng.choice(accepted).request), "reuse")
            return
        command_id = f"w{self.number}-{n}"
        case_id = self.rng.choice(self.cases)
        roll = self.rng.random()
        if roll < 0.15:
            # Every case is at version 2 or later before the writers start: 1 is stale for sure.
            request = transfer(case_id, command_id, self.rng.choice(OWNERS), expected_version=1)
            self.send(request, "stale")
        elif roll < 0.3:
            version = self.current_version(case_id)
            owner = self.rng.choice(OWNERS)
            self.send(transfer(case_id, command_id, owner, expected_version=version), "optimistic")
        else:
            self.send(mixed_request(self.rng, case_id, command_id), "mix")


def run_writers(
    stubs: Sequence[Stub], writers: int, commands: int, cases: Sequence[str]
) -> list[Writer]:
    """``writers`` threads, writer i on ``stubs[i % len(stubs)]`` (a pair spans both stubs)."""
    start = threading.Barrier(writers)
    pairs = [threading.Barrier(2) for _ in range(writers // 2)]
    crew = [
        Writer(i, stubs[i % len(stubs)], cases, commands, start, pairs[i // 2])
        for i in range(writers)
    ]
    threads = [threading.Thread(target=w.run, name=f"writer-{w.number}", daemon=True) for w in crew]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a writer thread is stuck"
    assert [e for w in crew for e in w.errors] == []
    return crew


def open_cases(stub: Stub, cases: Sequence[str]) -> list[Sent]:
    """Each case assigned and transferred once: every case is at version 2."""
    sent = []
    for case_id in cases:
        for request in (
            assign(case_id, f"{case_id}/open", OWNERS[0]),
            transfer(case_id, f"{case_id}/first-move", OWNERS[1]),
        ):
            outcome = send(stub, request)
            assert isinstance(outcome, pb.AppendResult), outcome
            sent.append(Sent(-1, "setup", request, outcome))
    return sent


# --- checks -------------------------------------------------------------------------------------


def matches(request: Any, event: pb.Event) -> bool:
    """Whether ``event`` is what ``request`` asks for (its last event, for multi-event commands)."""
    if event.actor != request.actor or event.case_id != request.case_id:
        return False
    match request:
        case pb.AssignRequest():
            return (
                event.WhichOneof("payload") == "assigned" and event.assigned.owner == request.owner
            )
        case pb.TransferRequest():
            moved = event.transferred
            return (
                event.WhichOneof("payload") == "transferred"
                and moved.to_owner == request.to_owner
                and moved.note == request.note
            )
        case pb.JoinSwarmRequest():
            joined = event.swarm_joined
            return (
                event.WhichOneof("payload") == "swarm_joined"
                and joined.agent_id == request.agent_id
            )
        case pb.LeaveSwarmRequest():
            left = event.swarm_left
            return (
                event.WhichOneof("payload") == "swarm_left"
                and left.agent_id == request.agent_id
                and left.cause == pb.SWARM_EXIT_LEFT
            )
        case pb.PauseRequest():
            return event.WhichOneof("payload") == "paused" and event.paused.reason == request.reason
        case pb.ResumeRequest():
            return event.WhichOneof("payload") == "resumed"
    raise TypeError(type(request))


def originals_of(sent: Sequence[Sent]) -> dict[str, Sent]:
    """The first answer of every accepted command_id; a command accepted as new twice fails."""
    originals: dict[str, Sent] = {}
    for s in sent:
        if s.accepted is not None and not s.accepted.replayed:
            cid = s.request.command_id
            assert cid not in originals, (
                f"{cid!r} was acknowledged as new twice: {originals[cid].outcome} and {s.outcome}"
            )
            originals[cid] = s
    return originals


def assert_one_exact_history(
    sent: Sequence[Sent],
    stored: Sequence[pb.Event],
    head: int,
    allowed_refusals: set[grpc.StatusCode],
) -> dict[str, Sent]:
    """The store holds exactly the acknowledged commands' events, and every answer agrees with it.

    Returns the original answer of every accepted command_id.
    """
    positions = [e.position for e in stored]
    assert positions == list(range(1, len(stored) + 1)), describe_gaps(positions)
    assert head == len(stored)

    by_case: dict[str, list[pb.Event]] = defaultdict(list)
    for event in stored:
        by_case[event.case_id].append(event)
    for case_id, events in by_case.items():
        versions = [e.version for e in events]
        assert versions == list(range(1, len(events) + 1)), (case_id, versions)
    final_version = {case_id: len(events) for case_id, events in by_case.items()}
    at = {(e.case_id, e.version): e for e in stored}

    # Every answer names its own request.
    for s in sent:
        if s.accepted is not None:
            assert (s.accepted.case_id, s.accepted.command_id) == (
                s.request.case_id,
                s.request.command_id,
            ), s

    originals = originals_of(sent)

    # A replay answers an identical request with the original's answer.
    for s in sent:
        if s.accepted is None or not s.accepted.replayed:
            continue
        original = originals.get(s.request.command_id)
        assert original is not None, f"replayed {s.accepted} has no original answer"
        assert s.request == original.request, f"a different request was replayed: {s}"
        assert original.accepted is not None
        assert answer(s.accepted) == answer(original.accepted), (s.accepted, original.accepted)

    # Each accepted command's events are stored once, at its versions, and nothing else is stored.
    by_command: dict[str, list[pb.Event]] = defaultdict(list)
    for event in stored:
        by_command[event.command_id].append(event)
    strays = sorted(set(by_command) - set(originals))
    assert strays == [], f"events stored for commands never acknowledged: {strays[:20]}"
    for cid, original in originals.items():
        result, request = original.accepted, original.request
        assert result is not None
        events = by_command.get(cid, [])
        assert len(events) == result.events_recorded, (result, [event_key(e) for e in events])
        first = result.version - result.events_recorded + 1
        assert [(e.case_id, e.version) for e in events] == [
            (result.case_id, v) for v in range(first, result.version + 1)
        ], (result, [event_key(e) for e in events])
        # The answer's position is the case's last event after the command (for a no-op, the
        # event that was last when the command ran).
        assert at[(result.case_id, result.version)].position == result.position, result
        if events:
            assert matches(request, events[-1]), (request, events[-1])
        if request.HasField("expected_version"):
            assert first - 1 == request.expected_version, (request, result)

    # A refusal stored nothing. Its command_id shows up in the store only when the same id was
    # also accepted: then the refusal was a different request (or, with two processes, a copy
    # that ran out of retries), and the stored events are the accepted request's.
    for s in sent:
        refusal = s.refusal
        if refusal is None:
            continue
        assert refusal.code in allowed_refusals, (s.request, refusal)
        cid = s.request.command_id
        original = originals.get(cid)
        if refusal.code == ALREADY_EXISTS:
            assert refusal.reason == "COMMAND_ID_REUSED", refusal
            assert original is not None, f"{cid!r} refused as reused, but was never accepted"
            assert s.request != original.request, f"an identical retry was refused: {s}"
            assert refusal.metadata["command_id"] == cid
            assert refusal.metadata["original_case_id"] == original.request.case_id, refusal
            assert refusal.metadata["original_kind"] == METHOD_OF[type(original.request)]
        else:
            assert original is None or refusal.code == UNAVAILABLE, (s, original)
        if refusal.code == ABORTED:
            metadata = refusal.metadata
            assert refusal.reason == "VERSION_CONFLICT", refusal
            assert metadata["case_id"] == s.request.case_id
            assert int(metadata["expected_version"]) == s.request.expected_version
            current = int(metadata["current_version"])
            assert current != s.request.expected_version, refusal
            # The case's version when the command ran: at least what the writer had already
            # seen, at most where the case ended.
            assert s.seen_version <= current <= final_version[s.request.case_id], (s, current)
    return originals


def outcomes_by_purpose(sent: Sequence[Sent]) -> dict[str, Counter[str]]:
    tally: dict[str, Counter[str]] = defaultdict(Counter)
    for s in sent:
        if s.accepted is not None:
            key = "replayed" if s.accepted.replayed else "accepted"
        else:
            assert s.refusal is not None
            key = s.refusal.code.name
        tally[s.purpose][key] += 1
    return tally


def assert_pairs_agree(sent: Sequence[Sent], *, one_process: bool) -> None:
    """A request sent twice at once is written once; of two payloads under one id, one wins."""
    by_id: dict[str, list[Sent]] = defaultdict(list)
    for s in sent:
        if s.purpose in {"duplicate", "rival"}:
            by_id[s.request.command_id].append(s)
    assert by_id, "no pair ever met"
    for cid, copies in by_id.items():
        assert len(copies) == 2, cid
        new = [c for c in copies if c.accepted is not None and not c.accepted.replayed]
        if cid.startswith("dup-"):
            assert copies[0].request == copies[1].request
            if one_process:
                # Nothing can make a transfer to a fresh owner fail in one process.
                assert len(new) == 1, copies
                replays = [c for c in copies if c.accepted is not None and c.accepted.replayed]
                assert len(replays) == 1, copies
            else:
                assert len(new) <= 1, copies
        else:
            assert copies[0].request != copies[1].request
            assert len(new) <= 1, copies
            if one_process:
                assert len(new) == 1, copies
                loser = next(c for c in copies if c is not new[0])
                assert loser.refusal is not None and loser.refusal.code == ALREADY_EXISTS, copies


def resendable(sent: Sequence[Sent], originals: dict[str, Sent]) -> list[Sent]:
    """The requests whose answer cannot change: accepted ones, reused ids, stale versions.

    (A command refused by a rule may be accepted later, once the case has moved on.)
    """
    return [s for s in sent if s.request.command_id in originals or s.purpose in {"stale", "reuse"}]


def resend_all(stubs: Sequence[Stub], sent: Sequence[Sent]) -> list[tuple[Sent, Outcome]]:
    """Resend requests once more, from a few threads, spread over ``stubs``."""

    def again(item: tuple[int, Sent]) -> tuple[Sent, Outcome]:
        index, s = item
        return s, send(stubs[index % len(stubs)], s.request)

    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(again, enumerate(sent)))


def assert_resends_change_nothing(
    resent: Sequence[tuple[Sent, Outcome]],
    originals: dict[str, Sent],
    final_version: dict[str, int],
) -> None:
    for s, outcome in resent:
        cid = s.request.command_id
        original = originals.get(cid)
        if original is not None and s.request == original.request:
            # Any request that was accepted once is answered from the store, as the original.
            assert isinstance(outcome, pb.AppendResult), (s, outcome)
            assert outcome.replayed, (s, outcome)
            assert original.accepted is not None
            assert answer(outcome) == answer(original.accepted), (s, outcome)
        elif original is not None:
            assert isinstance(outcome, Refusal) and outcome.code == ALREADY_EXISTS, (s, outcome)
        elif s.purpose == "stale":
            assert isinstance(outcome, Refusal) and outcome.code == ABORTED, (s, outcome)
            current = int(outcome.metadata["current_version"])
            assert current == final_version[s.request.case_id], (s, outcome)


# --- tests --------------------------------------------------------------------------------------


def test_concurrent_writers_with_duplicates_reused_ids_and_stale_versions_leave_one_exact_history(
    ledger: Ledger, stub: Stub
) -> None:
    cases = [f"WL-{n:02d}" for n in range(20)]
    tail = Tail(stub)
    try:
        setup = open_cases(stub, cases)
        batches, commands = ledger.writer.batches, ledger.writer.commands

        crew = run_writers([stub], writers=16, commands=40, cases=cases)

        batches = ledger.writer.batches - batches
        commands = ledger.writer.commands - commands
        stored, head = read_everything(stub)
        assert tail.wait_for_position(head, timeout=15), (
            f"the subscriber stopped at {tail.events[-1].position if tail.events else 0} of {head}"
        )
    finally:
        tail.close()

    load = [s for w in crew for s in w.log]
    sent = setup + load
    # Every single command went through the group-commit writer, and concurrent callers shared
    # transactions.
    assert commands == len(load)
    assert batches < commands, f"{commands} concurrent commands took {batches} transactions"

    assert [event_key(e) for e in tail.events] == [event_key(e) for e in stored]
    originals = assert_one_exact_history(sent, stored, head, ONE_PROCESS_REFUSALS)
    assert_pairs_agree(load, one_process=True)

    tally = outcomes_by_purpose(load)
    assert set(tally["resend"]) == {"replayed"}, tally["resend"]
    assert set(tally["reuse"]) == {"ALREADY_EXISTS"}, tally["reuse"]
    assert set(tally["stale"]) == {"ABORTED"}, tally["stale"]
    assert set(tally["rival"]) == {"accepted", "ALREADY_EXISTS"}, tally["rival"]
    assert tally["optimistic"]["accepted"] > 0, tally["optimistic"]
    assert tally["mix"]["FAILED_PRECONDITION"] > 0, tally["mix"]
    assert len(stored) > 250, "too few events were written to mean anything"

    # Resent afterwards, everything is answered as before and the store does not move.
    final_version: Counter[str] = Counter(e.case_id for e in stored)
    resent = resend_all([stub], resendable(sent, originals))
    assert_resends_change_nothing(resent, originals, final_version)
    again, again_head = read_everything(stub)
    assert again_head == head
    assert [event_key(e) for e in again] == [event_key(e) for e in stored]


def test_a_lone_sequential_caller_gets_a_transaction_per_command(
    ledger: Ledger, stub: Stub
) -> None:
    batches, commands = ledger.writer.batches, ledger.writer.commands
    for n in range(10):
        case_id = f"SOLO-{n}"
        assert accept(stub, assign(case_id, f"{case_id}/open", OWNERS[0])).version == 1
        assert accept(stub, transfer(case_id, f"{case_id}/move", OWNERS[1])).version == 2

    assert ledger.writer.commands - commands == 20
    assert ledger.writer.batches - batches == 20, "a lone caller waited to share a transaction"


def test_a_lone_caller_after_concurrent_load_does_not_wait_for_stragglers(
    database_url: str,
) -> None:
    """The linger for stragglers applies only while callers are concurrent."""
    linger = 0.5
    running = start_ledger(database_url, group_commit_linger_us=linger * 1e6)
    try:
        with channel(f"127.0.0.1:{running.server.port}") as chan:
            stub = ledger_pb2_grpc.LedgerServiceStub(chan)
            writer = running.writer

            start = threading.Barrier(8)

            def burst(w: int) -> list[Outcome]:
                start.wait(timeout=10)
                return [
                    send(stub, assign(f"BURST-{w}-{n}", f"burst-{w}-{n}", OWNERS[0]))
                    for n in range(2)
                ]

            with ThreadPoolExecutor(max_workers=8) as pool:
                answers = [a for batch in pool.map(burst, range(8)) for a in batch]
            assert all(isinstance(a, pb.AppendResult) for a in answers), answers
            assert writer.batches < writer.commands == 16, "concurrent callers shared no batch"

            batches, commands = writer.batches, writer.commands
            began = time.monotonic()
            for n in range(12):
                accept(stub, transfer(f"BURST-0-{n % 2}", f"solo-{n}", OWNERS[1 + n % 3]))
            took = time.monotonic() - began
    finally:
        running.stop(grace=1)

    assert writer.commands - commands == 12
    assert writer.batches - batches == 12
    # Lingering on every command would take 12 x 0.5 s; at most the first one may linger.
    assert took < 6 * linger, f"12 sequential commands took {took:.2f} s"


def test_two_server_processes_on_one_postgres_take_racing_writes_into_one_exact_history(
    postgres_url: str, tmp_path: Path
) -> None:
    cases = [f"XW-{n:02d}" for n in range(10)]
    # Tables are created at startup, which is not safe to run concurrently: one after the other.
    with (
        running_ledger(postgres_url, tmp_path / "a.log") as a,
        running_ledger(postgres_url, tmp_path / "b.log") as b,
        channel(a.target) as chan_a,
        channel(b.target) as chan_b,
    ):
        stubs = [
            ledger_pb2_grpc.LedgerServiceStub(chan_a),
            ledger_pb2_grpc.LedgerServiceStub(chan_b),
        ]
        setup = open_cases(stubs[1], cases)
        # Writer pairs span the processes: each copy of a duplicate goes to another server.
        crew = run_writers(stubs, writers=8, commands=30, cases=cases)

        stored, head = read_everything(stubs[0])
        stored_b, head_b = read_everything(stubs[1])
        assert head_b == head
        assert [event_key(e) for e in stored_b] == [event_key(e) for e in stored]

        load = [s for w in crew for s in w.log]
        sent = setup + load
        originals = assert_one_exact_history(sent, stored, head, TWO_PROCESS_REFUSALS)
        assert_pairs_agree(load, one_process=False)
        writing = {s.writer % 2 for s in originals.values() if s.writer >= 0}
        assert writing == {0, 1}, "both processes wrote"
        # How many commands the domain refuses depends on the interleaving (118 to 130 seen).
        assert len(stored) > 100, "too few events were written to mean anything"

        final_version: Counter[str] = Counter(e.case_id for e in stored)
        resent = resend_all(stubs, resendable(sent, originals))
        assert_resends_change_nothing(resent, originals, final_version)
        again, again_head = read_everything(stubs[1])
        assert again_head == head
        assert [event_key(e) for e in again] == [event_key(e) for e in stored]
        assert a.running() and b.running(), a.log() + b.log()


def own_connection(target: str) -> grpc.Channel:
    """A channel with the ledger's retry policy on a TCP connection of its own."""
    return grpc.insecure_channel(
        target,
        options=[
            ("grpc.service_config", CLIENT_SERVICE_CONFIG),
            ("grpc.enable_retries", 1),
            ("grpc.use_local_subchannel_pool", 1),
        ],
    )


def test_serve_with_two_processes_on_one_port_takes_racing_writes_into_one_exact_history(
    postgres_url: str, tmp_path: Path
) -> None:
    cases = [f"XP-{n:02d}" for n in range(10)]
    with running_ledger(postgres_url, tmp_path / "p.log", args=["--processes", "2"]) as server:
        channels = [own_connection(server.target) for _ in range(8)]
        try:
            stubs = [ledger_pb2_grpc.LedgerServiceStub(c) for c in channels]
            setup = open_cases(stubs[0], cases)
            crew = run_writers(stubs, writers=8, commands=30, cases=cases)
            # Eight connections to one port: the kernel gave both processes some (all eight on
            # one process would happen once in 128 runs by chance; it is far rarer in practice).
            serving = processes_with_connections(server.pid, server.port)
            assert len(serving) == 2, f"connections reached only {serving}:\n{server.log()}"

            stored, head = read_everything(stubs[0])
            load = [s for w in crew for s in w.log]
            assert_one_exact_history(setup + load, stored, head, TWO_PROCESS_REFUSALS)
            assert_pairs_agree(load, one_process=False)
            # How many commands the domain refuses depends on the interleaving (118 to 130 seen).
            assert len(stored) > 100, "too few events were written to mean anything"
            for stub in stubs[1:]:
                assert read_everything(stub) == (stored, head)
        finally:
            for chan in channels:
                chan.close()
        server.sigterm()
        assert server.wait(30) == 0, server.log()


def test_serve_refuses_several_processes_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/ledger.sqlite"
    with (
        pytest.raises(RuntimeError, match="needs PostgreSQL"),
        running_ledger(url, tmp_path / "s.log", args=["--processes", "2"]),
    ):
        pass

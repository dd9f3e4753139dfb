"""ImportEvents: a client stream of commands, written in large batches, answered with counts and the
error of every refused command by its index in the stream.

The workload is the benchmark's realistic mix (assignments, escalations, ping-pong, swarms, pauses,
resolutions, reopenings) interleaved over many open cases. What is stored is compared with a small
model of the rules that mix touches, so the test knows which events each command must record.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from bench.workload import interleaved_batches
from ownership.v1 import ledger_pb2 as pb
from ownership.v1 import ledger_pb2_grpc
from services.ledger.api.rendering import batch_command
from services.ledger.api.server import channel
from tests.e2e.conftest import start_ledger
from tests.e2e.test_global_order import describe_gaps, read_everything
from tests.e2e.wire import ALICE, BOB, FIELD_OF, RPC_OF, unpack

Stub = ledger_pb2_grpc.LedgerServiceStub

CALL_TIMEOUT = 60.0
# Message sizes, cycled: empty messages, single commands, and messages far larger than the rest.
MESSAGE_SIZES = (0, 1, 7, 0, 250, 33, 1200, 0, 64, 499, 2, 0)


# --- building streams ---------------------------------------------------------------------------


def wire(request: Message) -> pb.BatchCommand:
    return pb.BatchCommand(**{FIELD_OF[type(request)]: request})


# These builders send as actor "importer", not as tests.e2e.wire's "tester": they stay here.
def request(kind: type[Message], case_id: str, command_id: str, **fields: Any) -> Any:
    return kind(**({"case_id": case_id, "command_id": command_id, "actor": "importer"} | fields))


def assign(case_id: str, command_id: str, owner: pb.Owner = ALICE, **fields: Any) -> Any:
    return request(pb.AssignRequest, case_id, command_id, owner=owner, **fields)


def transfer(case_id: str, command_id: str, to_owner: pb.Owner, **fields: Any) -> Any:
    fields.setdefault("reason", pb.TRANSFER_REASON_ESCALATION)
    return request(pb.TransferRequest, case_id, command_id, to_owner=to_owner, **fields)


def pause(case_id: str, command_id: str, **fields: Any) -> Any:
    fields.setdefault("reason", pb.PAUSE_REASON_AWAITING_CUSTOMER)
    return request(pb.PauseRequest, case_id, command_id, **fields)


def resume(case_id: str, command_id: str) -> Any:
    return request(pb.ResumeRequest, case_id, command_id)


def workload(cases: int, prefix: str, seed: int = 7) -> list[pb.BatchCommand]:
    """The benchmark's realistic mix, as the commands a client streams."""
    return [
        batch_command(command)
        for batch in interleaved_batches(cases, batch_size=100, seed=seed, prefix=prefix)
        for command in batch
    ]


def messages(
    commands: Sequence[pb.BatchCommand], sizes: Sequence[int] = MESSAGE_SIZES
) -> list[pb.ImportEventsRequest]:
    """``commands`` cut into messages of the given sizes (cycled), with an empty message at each end."""
    out = [pb.ImportEventsRequest()]
    rest = list(commands)
    for size in itertools.cycle(sizes):
        if not rest:
            break
        out.append(pb.ImportEventsRequest(commands=rest[:size]))
        rest = rest[size:]
    out.append(pb.ImportEventsRequest())
    return out


def import_events(stub: Stub, stream: Iterable[pb.ImportEventsRequest]) -> pb.ImportEventsResponse:
    response: pb.ImportEventsResponse = stub.ImportEvents(iter(stream), timeout=CALL_TIMEOUT)
    return response


# --- what the store should hold -----------------------------------------------------------------


def inner(command: pb.BatchCommand) -> Any:
    kind = command.WhichOneof("command")
    assert kind is not None
    return getattr(command, kind)


def expected_events(accepted: Sequence[pb.BatchCommand]) -> dict[str, list[tuple[str, str]]]:
    """Per case, (command_id, payload) of every event the accepted commands record, in order.

    A model of the rules the workload touches: a transfer to the current owner records nothing,
    and resolving a case first closes each open swarm participation.
    """
    owner: dict[str, pb.Owner] = {}
    swarm: dict[str, set[str]] = defaultdict(set)
    events: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for command in accepted:
        kind, r = command.WhichOneof("command"), inner(command)
        case, cid = r.case_id, r.command_id
        payloads: list[str]
        if kind == "assign":
            assert case not in owner, "the model knows Assign only as the opening command"
            owner[case] = r.owner
            payloads = ["assigned"]
        elif kind == "transfer":
            assert r.to_owner.agent_id not in swarm[case], "the model knows no swarm takeovers"
            payloads = [] if r.to_owner == owner[case] else ["transferred"]
            owner[case] = r.to_owner
        elif kind == "join_swarm":
            assert r.agent_id not in swarm[case], "the model knows no no-op joins"
            swarm[case].add(r.agent_id)
            payloads = ["swarm_joined"]
        elif kind == "leave_swarm":
            swarm[case].remove(r.agent_id)
            payloads = ["swarm_left"]
        elif kind == "resolve":
            payloads = ["swarm_left"] * len(swarm[case]) + ["resolved"]
            swarm[case].clear()
        else:
            payloads = [{"pause": "paused", "resume": "resumed", "reopen": "reopened"}[kind or ""]]
        events[case] += [(cid, p) for p in payloads]
    return events


def stored_by_case(stored: Sequence[pb.Event]) -> dict[str, list[tuple[str, str]]]:
    by_case: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for event in stored:
        by_case[event.case_id].append((event.command_id, event.WhichOneof("payload") or ""))
    return by_case


def assert_contiguous(stored: Sequence[pb.Event], head: int) -> None:
    positions = [e.position for e in stored]
    assert positions == list(range(1, len(stored) + 1)), describe_gaps(positions)
    assert head == len(stored)
    versions: dict[str, list[int]] = defaultdict(list)
    for event in stored:
        versions[event.case_id].append(event.version)
    for case_id, seen in versions.items():
        assert seen == list(range(1, len(seen) + 1)), (case_id, seen)


# --- refusals -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    """The refusal the command at ``index`` must get."""

    index: int
    code: int
    reason: str = ""


def reason_of(status: status_pb2.Status) -> str:
    infos = unpack(status.details, error_details_pb2.ErrorInfo)
    return str(infos[0].reason) if infos else ""


def violated_fields(status: status_pb2.Status) -> set[str]:
    return {
        v.field
        for bad in unpack(status.details, error_details_pb2.BadRequest)
        for v in bad.field_violations
    }


def single_status(stub: Stub, command: pb.BatchCommand) -> status_pb2.Status:
    """The status the single-command RPC fails with for ``command``."""
    kind = command.WhichOneof("command")
    assert kind is not None
    with pytest.raises(grpc.RpcError) as caught:
        getattr(stub, RPC_OF[kind])(inner(command), timeout=CALL_TIMEOUT)
    status = rpc_status.from_call(caught.value)
    assert status is not None
    return status


def assert_refusals(
    response: pb.ImportEventsResponse, stream: Sequence[pb.BatchCommand], expected: list[Expected]
) -> None:
    """Each refusal names its place in the stream, its case and command_id, and the right error."""
    got = [(r.index, r.error.code) for r in response.refusals]
    assert got == [(e.index, e.code) for e in expected]
    assert response.refused == len(expected)
    for refusal, e in zip(response.refusals, expected, strict=True):
        if e.reason:
            assert reason_of(refusal.error) == e.reason, (e, refusal)
        command = stream[refusal.index]
        sent = inner(command) if command.WhichOneof("command") is not None else None
        assert (refusal.case_id, refusal.command_id) == (
            (sent.case_id, sent.command_id) if sent is not None else ("", "")
        ), f"refusal {refusal.index} ({refusal.error.message}) does not name the command's ids"


# --- tests --------------------------------------------------------------------------------------


def test_importing_a_realistic_workload_stores_every_command_in_order_and_counts_it(
    stub: Stub,
) -> None:
    commands = workload(cases=500, prefix="IMP")
    assert len(commands) > 2500

    response = import_events(stub, messages(commands))

    assert (response.accepted, response.replayed, response.refused) == (len(commands), 0, 0)
    assert list(response.refusals) == []
    stored, head = read_everything(stub)
    assert_contiguous(stored, head)
    assert response.events_recorded == len(stored)
    assert response.last_position == head
    # Each case's events are its commands' events, in the order the commands were sent.
    assert stored_by_case(stored) == expected_events(commands)
    # Commands of one transaction take positions in the order sent, across cases too.
    order = {inner(c).command_id: i for i, c in enumerate(commands)}
    sent_order = [order[e.command_id] for e in stored]
    assert sent_order == sorted(sent_order)


def test_resending_an_import_stores_only_what_was_not_stored_yet(stub: Stub) -> None:
    commands = workload(cases=150, prefix="AGAIN", seed=11)
    cut = len(commands) * 2 // 5

    # An import that broke off after its first part, then the whole stream resent.
    first = import_events(stub, messages(commands[:cut], sizes=(3, 0, 100)))
    assert (first.accepted, first.replayed, first.refused) == (cut, 0, 0)
    partial, partial_head = read_everything(stub)
    assert first.last_position == partial_head
    resent = import_events(stub, messages(commands))
    assert (resent.accepted, resent.replayed, resent.refused) == (len(commands) - cut, cut, 0)

    stored, head = read_everything(stub)
    assert_contiguous(stored, head)
    assert stored[: len(partial)] == partial
    assert resent.events_recorded == len(stored) - len(partial)
    assert resent.last_position == head
    assert stored_by_case(stored) == expected_events(commands)

    # Once everything is in, the same stream adds nothing at all.
    again = import_events(stub, messages(commands, sizes=(1000, 0, 1)))
    assert (again.accepted, again.replayed, again.refused) == (0, len(commands), 0)
    assert again.events_recorded == 0
    assert again.last_position == head
    assert read_everything(stub) == (stored, head)


def test_an_import_refuses_bad_commands_one_by_one_as_the_single_rpc_would_and_stores_the_rest(
    stub: Stub,
) -> None:
    stub.Assign(assign("M-1", "m1-open"), timeout=CALL_TIMEOUT)
    stub.Transfer(transfer("M-1", "m1-first-move", BOB), timeout=CALL_TIMEOUT)

    stream = [
        wire(assign("M-2", "m2-open")),  # 0: accepted
        pb.BatchCommand(),  # 1: holds no command
        wire(transfer("M-2", "bad-enum", BOB, reason=99)),  # 2: unknown enum value
        wire(request(pb.JoinSwarmRequest, "M-2", "bad-role", agent_id="carol", role=42)),  # 3
        wire(assign("M\x07", "bad-case-id")),  # 4: control character in the case id
        wire(pause("M-2", "")),  # 5: no command_id
        wire(assign("M-3", "x" * 129)),  # 6: command_id too long
        wire(resume("M-2", "m2-resume-early")),  # 7: rule: not paused
        wire(transfer("NO-SUCH-CASE", "ghost-move", BOB)),  # 8: unknown case
        wire(transfer("M-1", "m1-stale", ALICE, expected_version=1)),  # 9: stale version
        wire(assign("M-4", "m1-open")),  # 10: command_id of a stored command, other request
        wire(pause("M-2", "m2-pause")),  # 11: accepted
        wire(pause("M-2", "m2-pause", reason=pb.PAUSE_REASON_SCHEDULED)),  # 12: id reused
        wire(pause("M-2", "m2-pause")),  # 13: the same again: replayed
        wire(resume("M-2", "m2-resume")),  # 14: accepted
        wire(assign("M-2", "m2-reassign", owner=BOB)),  # 15: rule: already assigned
        wire(transfer("M-1", "m1-move", ALICE)),  # 16: accepted
    ]
    invalid = code_pb2.INVALID_ARGUMENT
    expected = [
        Expected(1, invalid),
        Expected(2, invalid),
        Expected(3, invalid),
        Expected(4, invalid),
        Expected(5, invalid),
        Expected(6, invalid),
        Expected(7, code_pb2.FAILED_PRECONDITION, "NOT_PAUSED"),
        Expected(8, code_pb2.NOT_FOUND),
        Expected(9, code_pb2.ABORTED, "VERSION_CONFLICT"),
        Expected(10, code_pb2.ALREADY_EXISTS, "COMMAND_ID_REUSED"),
        Expected(12, code_pb2.ALREADY_EXISTS, "COMMAND_ID_REUSED"),
        Expected(15, code_pb2.FAILED_PRECONDITION, "CASE_ALREADY_ASSIGNED"),
    ]

    response = import_events(stub, messages(stream, sizes=(2, 0, 5, 1, 0, 3)))

    stored, head = read_everything(stub)
    assert [e.command_id for e in stored] == [
        "m1-open",
        "m1-first-move",
        "m2-open",
        "m2-pause",
        "m2-resume",
        "m1-move",
    ]
    assert_contiguous(stored, head)
    assert (response.accepted, response.replayed) == (4, 1)
    assert response.events_recorded == 4
    assert response.last_position == head

    # Every refusal's code and reason is the single RPC's, and so are the fields it names (in the
    # import, with the command's place in the stream in front).
    by_index = {r.index: r for r in response.refusals}
    for e in expected:
        if e.index == 1:
            continue  # an empty BatchCommand has no single RPC
        refusal = by_index.get(e.index)
        assert refusal is not None, f"command {e.index} was not refused"
        alone = single_status(stub, stream[e.index])
        assert (refusal.error.code, reason_of(refusal.error)) == (alone.code, reason_of(alone)), (
            e.index
        )
        if alone.code == code_pb2.INVALID_ARGUMENT:
            imported = violated_fields(refusal.error)
            single = violated_fields(alone)
            assert len(imported) == len(single), (e.index, imported, single)
            assert all(any(f == s or f.endswith(f".{s}") for s in single) for f in imported), (
                e.index,
                imported,
                single,
            )
    assert read_everything(stub) == (stored, head), "a single RPC of a refused command stored"

    assert_refusals(response, stream, expected)


def test_an_import_larger_than_one_internal_batch_answers_every_command(database_url: str) -> None:
    running = start_ledger(database_url, import_batch_commands=50)
    try:
        with channel(f"127.0.0.1:{running.server.port}") as chan:
            stub = ledger_pb2_grpc.LedgerServiceStub(chan)
            base = iter(workload(cases=70, prefix="BIG", seed=3))
            specials: dict[int, pb.BatchCommand] = {
                0: wire(assign("K", "k-open")),
                49: wire(pause("K", "k-pause")),  # the last command of the first batch
                50: pb.BatchCommand(),  # the first of the second
                51: wire(resume("K", "k-resume")),  # resumes the pause of the batch before
                99: wire(pause("K", "k-pause")),  # a batch later: replayed
                100: wire(resume("K", "k-resume-again")),  # not paused any more
                149: wire(assign("K2", "k-open")),  # the id of the first batch's first command
                150: wire(pause("K", "k-pause-2")),
                151: wire(pause("K", "k-pause-2")),  # in the same batch: replayed
                152: wire(transfer("NO-SUCH-CASE", "ghost", BOB)),
            }
            stream: list[pb.BatchCommand] = []
            for index in itertools.count():
                if index in specials:
                    stream.append(specials[index])
                elif index == 75:
                    stream.append(stream[10])  # a workload command, a batch later: replayed
                elif (command := next(base, None)) is not None:
                    stream.append(command)
                else:
                    break
            last = len(stream)
            stream.append(wire(transfer("K", "k-bad", BOB, reason=99)))
            assert len(stream) > 300

            response = import_events(stub, messages(stream, sizes=(0, 13, 1, 77, 0, 40)))

            stored, head = read_everything(stub)
    finally:
        running.stop(grace=1)

    expected = [
        Expected(50, code_pb2.INVALID_ARGUMENT),
        Expected(100, code_pb2.FAILED_PRECONDITION, "NOT_PAUSED"),
        Expected(149, code_pb2.ALREADY_EXISTS, "COMMAND_ID_REUSED"),
        Expected(152, code_pb2.NOT_FOUND),
        Expected(last, code_pb2.INVALID_ARGUMENT),
    ]
    replayed = {75, 99, 151}
    accepted = [
        c
        for i, c in enumerate(stream)
        if i not in replayed and i not in {e.index for e in expected}
    ]
    assert (response.accepted, response.replayed) == (len(accepted), len(replayed))
    assert_contiguous(stored, head)
    assert stored_by_case(stored) == expected_events(accepted)
    assert response.events_recorded == len(stored)
    assert response.last_position == head
    assert_refusals(response, stream, expected)


@pytest.mark.parametrize("import_batch", [20, 100], ids=["small-batches", "copy-sized-batches"])
def test_an_import_racing_unary_writes_on_the_same_cases_loses_nothing(
    database_url: str, import_batch: int
) -> None:
    hot = [f"HOT-{n}" for n in range(3)]
    # Several internal batches, each racing the unary writers; on PostgreSQL a batch of 100
    # events takes the COPY path, one of 20 the INSERT path.
    running = start_ledger(database_url, import_batch_commands=import_batch)
    try:
        with channel(f"127.0.0.1:{running.server.port}") as chan:
            stub = ledger_pb2_grpc.LedgerServiceStub(chan)
            opened = [stub.Assign(assign(c, f"{c}/open"), timeout=CALL_TIMEOUT) for c in hot]

            imported: list[pb.BatchCommand] = []
            for k in range(240):
                case_id = hot[k % len(hot)]
                if k % 12 == 3:
                    imported.append(wire(pause(case_id, f"imp-{k}")))
                elif k % 12 == 9:
                    imported.append(wire(resume(case_id, f"imp-{k}")))
                else:
                    owner = pb.Owner(agent_id=f"imp-{k}", group_id="import")
                    imported.append(wire(transfer(case_id, f"imp-{k}", owner)))

            def paced() -> Iterator[pb.ImportEventsRequest]:
                for message in messages(imported, sizes=(4, 0, 7)):
                    time.sleep(0.01)
                    yield message

            done = threading.Event()
            acks: list[pb.AppendResult] = []
            failures: list[str] = []

            def unary(writer: int) -> None:
                for n in itertools.count():
                    if done.is_set():
                        return
                    owner = pb.Owner(agent_id=f"u-{writer}-{n}", group_id="unary")
                    move = transfer(hot[(writer + n) % len(hot)], f"u-{writer}-{n}", owner)
                    try:
                        acks.append(stub.Transfer(move, timeout=CALL_TIMEOUT).result)
                    except grpc.RpcError as error:
                        failures.append(f"{move.command_id}: {error.code().name}")

            threads = [threading.Thread(target=unary, args=(w,), daemon=True) for w in range(3)]
            for thread in threads:
                thread.start()
            try:
                response = import_events(stub, paced())
            finally:
                done.set()
                for thread in threads:
                    thread.join(timeout=30)
            assert not any(t.is_alive() for t in threads)
            stored, head = read_everything(stub)
    finally:
        running.stop(grace=1)

    assert failures == []
    assert_contiguous(stored, head)
    # A command refused at all can only have run out of retries (a rare few, never a whole
    # batch), and then it stored nothing.
    refused = {inner(imported[r.index]).command_id for r in response.refusals}
    assert {r.error.code for r in response.refusals} <= {code_pb2.UNAVAILABLE}, response.refusals
    assert len(refused) <= len(imported) // 50, f"{len(refused)} imported commands were refused"
    assert (response.accepted, response.replayed) == (len(imported) - len(refused), 0)

    by_command = Counter(e.command_id for e in stored)
    expected = (
        {f"{c}/open" for c in hot}
        | {a.command_id for a in acks}
        | {inner(c).command_id for c in imported} - refused
    )
    assert set(by_command) == expected, "stored commands differ from the acknowledged ones"
    assert set(by_command.values()) == {1}, "a command was stored more than once"
    at = {(e.case_id, e.version): e for e in stored}
    for ack in [o.result for o in opened] + acks:
        event = at[(ack.case_id, ack.version)]
        assert (event.command_id, event.position) == (ack.command_id, ack.position), ack

    # The import's commands on each case are stored in the order sent.
    sent_order = {inner(c).command_id: i for i, c in enumerate(imported)}
    for case_id in hot:
        mine = [
            sent_order[e.command_id]
            for e in stored
            if e.case_id == case_id and e.command_id in sent_order
        ]
        assert mine == sorted(mine), case_id
    import_positions = [e.position for e in stored if e.command_id in sent_order]
    assert response.events_recorded == len(import_positions)
    assert response.last_position == max(import_positions)
    # The two kinds of writers really interleaved.
    unary_positions = [a.position for a in acks]
    assert any(min(import_positions) < p < max(import_positions) for p in unary_positions)

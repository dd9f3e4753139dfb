"""ExecuteBatch: many commands in order, one answer each, every accepted one stored."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from ownership.v1 import ledger_pb2 as pb
from ownership.v1 import ledger_pb2_grpc
from services.bootstrap import Ledger
from tests.e2e.wire import (
    ALICE,
    BOB,
    FIELD_OF,
    RPC_OF,
    all_events,
    assign,
    request,
    transfer,
    unpack,
)

Stub = ledger_pb2_grpc.LedgerServiceStub


# --- helpers ------------------------------------------------------------------------------------


def join(case_id: str, command_id: str, agent_id: str, **fields: Any) -> Any:
    fields.setdefault("role", pb.SWARM_ROLE_CONSULTANT)
    return request(pb.JoinSwarmRequest, case_id, command_id, agent_id=agent_id, **fields)


def leave(case_id: str, command_id: str, agent_id: str) -> Any:
    return request(pb.LeaveSwarmRequest, case_id, command_id, agent_id=agent_id)


def pause(case_id: str, command_id: str, **fields: Any) -> Any:
    fields.setdefault("reason", pb.PAUSE_REASON_AWAITING_CUSTOMER)
    return request(pb.PauseRequest, case_id, command_id, **fields)


def resume(case_id: str, command_id: str, **fields: Any) -> Any:
    return request(pb.ResumeRequest, case_id, command_id, **fields)


def resolve(case_id: str, command_id: str) -> Any:
    return request(pb.ResolveRequest, case_id, command_id, resolution_code="fixed")


def reopen(case_id: str, command_id: str) -> Any:
    return request(pb.ReopenRequest, case_id, command_id, reason="came back")


def batch(stub: Stub, *requests: Any) -> list[pb.BatchResult]:
    commands = [
        r if isinstance(r, pb.BatchCommand) else pb.BatchCommand(**{FIELD_OF[type(r)]: r})
        for r in requests
    ]
    results = list(stub.ExecuteBatch(pb.ExecuteBatchRequest(commands=commands)).results)
    assert len(results) == len(commands), "one result per command, in order"
    return results


def reason_of(status: status_pb2.Status) -> str:
    (info,) = unpack(status.details, error_details_pb2.ErrorInfo)
    return str(info.reason)


def fields_of(status: status_pb2.Status) -> set[str]:
    assert status.code == code_pb2.INVALID_ARGUMENT, status
    (bad,) = unpack(status.details, error_details_pb2.BadRequest)
    return {v.field for v in bad.field_violations}


def single_status(stub: Stub, req: Any) -> status_pb2.Status:
    """The status the single-command RPC fails with for ``req``."""
    with pytest.raises(grpc.RpcError) as caught:
        getattr(stub, RPC_OF[FIELD_OF[type(req)]])(req)
    status = rpc_status.from_call(caught.value)
    assert status is not None
    return status


def triple(result: pb.AppendResult) -> tuple[int, int, int]:
    return (result.version, result.position, result.events_recorded)


# --- refusals stay local ------------------------------------------------------------------------


def test_a_refused_command_does_not_fail_its_neighbours_and_fails_as_the_single_rpc_would(
    stub: Stub,
) -> None:
    stub.Assign(assign("C", "C/open"))
    stub.Transfer(transfer("C", "C/to-bob", BOB))

    sent = [
        assign("N", "N/open"),  # accepted
        resume("C", "C/resume-early"),  # rule: not paused
        pause("C", "C/pause"),  # accepted (v3)
        transfer("C", "C/stale", ALICE, expected_version=1),  # stale expected_version
        assign("X", "C/open"),  # command_id reused for a different request
        transfer("C", "C/bell", ALICE, note="ring\x07"),  # invalid field
        join("NO-SUCH-CASE", "ghost/join", "carol"),  # unknown case
        resume("C", "C/resume"),  # accepted (v4)
    ]
    results = batch(stub, *sent)

    outcomes = [r.WhichOneof("outcome") for r in results]
    assert outcomes == ["result", "error", "result", "error", "error", "error", "error", "result"]
    assert [r.result.version for r in results if r.HasField("result")] == [1, 3, 4]
    errors = {i: r.error for i, r in enumerate(results) if r.HasField("error")}
    assert {i: e.code for i, e in errors.items()} == {
        1: code_pb2.FAILED_PRECONDITION,
        3: code_pb2.ABORTED,
        4: code_pb2.ALREADY_EXISTS,
        5: code_pb2.INVALID_ARGUMENT,
        6: code_pb2.NOT_FOUND,
    }
    assert reason_of(errors[1]) == "NOT_PAUSED"
    assert reason_of(errors[3]) == "VERSION_CONFLICT"
    (conflict,) = unpack(errors[3].details, error_details_pb2.ErrorInfo)
    assert conflict.metadata["current_version"] == "3"
    assert reason_of(errors[4]) == "COMMAND_ID_REUSED"
    assert fields_of(errors[5]) == {"commands[5].transfer.note"}
    (resource,) = unpack(errors[6].details, error_details_pb2.ResourceInfo)
    assert resource.resource_name == "NO-SUCH-CASE"

    # Only the accepted commands were stored.
    stored = [e.command_id for e in all_events(stub)]
    assert stored == ["C/open", "C/to-bob", "N/open", "C/pause", "C/resume"]

    # Each refused command fails alone exactly as it did in the batch (the case is unpaused again,
    # so the rule still holds; version numbers and field paths are the only things that move).
    for i in (1, 4, 6):
        assert single_status(stub, sent[i]) == errors[i], i
    alone = single_status(stub, sent[3])
    assert (alone.code, reason_of(alone)) == (code_pb2.ABORTED, "VERSION_CONFLICT")
    alone = single_status(stub, sent[5])
    assert fields_of(alone) == {"note"}
    assert len(all_events(stub)) == 5


def test_invalid_fields_are_named_with_the_command_place_and_kind(stub: Stub) -> None:
    stub.Assign(assign("C", "C/open"))
    results = batch(
        stub,
        pause("C", "ok"),
        transfer("C", "long-note", BOB, note="n" * 4097),
        resume("C", "r", occurred_at=Timestamp(seconds=2**40)),
        request(pb.JoinSwarmRequest, "C", "j", role=42),
        assign("C2", "a", owner=pb.Owner(agent_id="a" * 129, group_id="g\x1b")),
        pb.BatchCommand(),
        pause("C", "unspecified", reason=pb.PAUSE_REASON_UNSPECIFIED),
        transfer("c" * 129, "", BOB),
    )

    assert results[0].result.version == 2
    assert fields_of(results[1].error) == {"commands[1].transfer.note"}
    assert fields_of(results[2].error) == {"commands[2].resume.occurred_at"}
    assert fields_of(results[3].error) == {
        "commands[3].join_swarm.agent_id",
        "commands[3].join_swarm.role",
    }
    assert fields_of(results[4].error) == {
        "commands[4].assign.owner.agent_id",
        "commands[4].assign.owner.group_id",
    }
    assert fields_of(results[5].error) == {"commands[5]"}
    assert fields_of(results[6].error) == {"commands[6].pause.reason"}
    assert fields_of(results[7].error) == {
        "commands[7].transfer.case_id",
        "commands[7].transfer.command_id",
    }
    assert len(all_events(stub)) == 2


def test_a_refused_command_leaves_no_state_for_the_commands_after_it(stub: Stub) -> None:
    results = batch(
        stub,
        assign("X", "X/open", owner=pb.Owner()),  # invalid: the case is not opened
        transfer("X", "X/move", BOB),
        assign("C", "C/open"),
        pause("C", "C/pause"),
        pause("C", "C/pause-again", reason=pb.PAUSE_REASON_SCHEDULED),  # already paused
        resume("C", "C/resume"),  # resumes the first pause
    )

    assert results[0].error.code == code_pb2.INVALID_ARGUMENT
    assert results[1].error.code == code_pb2.NOT_FOUND
    assert reason_of(results[4].error) == "ALREADY_PAUSED"
    assert [triple(r.result)[0] for r in (results[2], results[3], results[5])] == [1, 2, 3]
    (resumed,) = stub.ReadCase(pb.ReadCaseRequest(case_id="C", after_version=2)).events
    assert resumed.resumed.reason == pb.PAUSE_REASON_AWAITING_CUSTOMER


def test_a_nul_in_an_id_does_not_fail_its_neighbours(stub: Stub) -> None:
    results = batch(
        stub,
        assign("C", "C/open"),
        assign("D", "D/\x00"),
        assign("E\x00", "E/open"),
        pause("C", "p"),
    )

    assert results[0].result.events_recorded == 1
    assert fields_of(results[1].error) == {"commands[1].assign.command_id"}
    assert fields_of(results[2].error) == {"commands[2].assign.case_id"}
    assert results[3].result.version == 2
    assert [e.command_id for e in all_events(stub)] == ["C/open", "p"]


# --- order and versions -------------------------------------------------------------------------


def test_commands_on_one_case_apply_in_order_with_contiguous_versions(stub: Stub) -> None:
    sent = [
        assign("C", "1", tier=pb.TIER_L1),
        transfer("C", "2", BOB, tier=pb.TIER_L2),
        join("C", "3", "carol"),
        pause("C", "4"),
        resume("C", "5"),
        leave("C", "6", "carol"),
        join("C", "7", "dave"),
        resolve("C", "8"),  # closes dave's participation: two events
        reopen("C", "9"),
    ]
    results = [r.result for r in batch(stub, *sent)]

    assert [r.version for r in results] == [1, 2, 3, 4, 5, 6, 7, 9, 10]
    assert [r.events_recorded for r in results] == [1, 1, 1, 1, 1, 1, 1, 2, 1]
    assert not any(r.replayed for r in results)
    events = stub.ReadCase(pb.ReadCaseRequest(case_id="C")).events
    assert [e.version for e in events] == list(range(1, 11))
    assert [e.command_id for e in events] == ["1", "2", "3", "4", "5", "6", "7", "8", "8", "9"]
    assert [e.WhichOneof("payload") for e in events][-3:] == ["swarm_left", "resolved", "reopened"]
    positions = [e.position for e in events]
    assert positions == list(range(positions[0], positions[0] + 10)), "one gap-free write"
    assert [r.position for r in results] == [positions[v - 1] for v in [1, 2, 3, 4, 5, 6, 7, 9, 10]]


def test_expected_versions_inside_a_batch_see_the_earlier_commands_of_the_batch(
    stub: Stub,
) -> None:
    results = batch(
        stub,
        assign("C", "1", expected_version=0),
        transfer("C", "2", BOB, expected_version=1),
        pause("C", "3", expected_version=2),
        resume("C", "4", expected_version=2),  # stale: the pause made it 3
        resume("C", "5", expected_version=3),
    )

    assert [r.result.version for r in results if r.HasField("result")] == [1, 2, 3, 4]
    (conflict,) = unpack(results[3].error.details, error_details_pb2.ErrorInfo)
    assert conflict.reason == "VERSION_CONFLICT"
    assert conflict.metadata["current_version"] == "3"


INTERLEAVED = [
    ("A", "a1", "assign"),
    ("B", "b1", "assign"),
    ("A", "a2", "pause"),
    ("B", "b2", "transfer"),
    ("A", "a3", "resume"),
]


def interleaved(stub: Stub) -> list[pb.AppendResult]:
    build = {
        "assign": assign,
        "pause": pause,
        "transfer": lambda case, cid: transfer(case, cid, BOB),
        "resume": resume,
    }
    return [r.result for r in batch(stub, *(build[k](c, i) for c, i, k in INTERLEAVED))]


def test_each_case_of_a_batch_keeps_the_order_its_commands_were_sent_in(stub: Stub) -> None:
    results = interleaved(stub)

    assert [(r.case_id, r.version) for r in results] == [
        ("A", 1),
        ("B", 1),
        ("A", 2),
        ("B", 2),
        ("A", 3),
    ]
    events = all_events(stub)
    assert sorted(e.position for e in events) == [1, 2, 3, 4, 5]
    for case in ("A", "B"):
        own = [e for e in events if e.case_id == case]
        assert [e.command_id for e in own] == [i for c, i, _ in INTERLEAVED if c == case]
        assert [e.position for e in own] == sorted(e.position for e in own)
        assert [r.position for r in results if r.case_id == case] == [e.position for e in own]


def test_the_global_order_of_a_batch_follows_the_order_its_commands_were_sent_in(
    stub: Stub,
) -> None:
    results = interleaved(stub)

    assert [r.position for r in results] == [1, 2, 3, 4, 5]
    assert [e.command_id for e in all_events(stub)] == [i for _, i, _ in INTERLEAVED]


def test_a_no_op_in_a_batch_points_at_the_case_s_last_event(stub: Stub) -> None:
    results = batch(stub, assign("C", "open"), transfer("C", "to-alice", ALICE))
    opened, no_op = (r.result for r in results)
    assert triple(no_op) == (1, opened.position, 0)
    assert len(all_events(stub)) == 1


# --- command_ids within a batch -----------------------------------------------------------------


def test_a_command_repeated_in_the_same_batch_is_answered_as_a_replay(stub: Stub) -> None:
    results = [
        r.result
        for r in batch(
            stub,
            assign("C", "open"),
            transfer("C", "move", BOB),
            assign("C", "open"),
            transfer("C", "move", BOB),
        )
    ]

    assert [r.replayed for r in results] == [False, False, True, True]
    assert triple(results[2]) == triple(results[0])
    assert triple(results[3]) == triple(results[1])
    assert [e.command_id for e in all_events(stub)] == ["open", "move"]


def test_a_command_id_reused_inside_a_batch_for_something_else_is_refused(stub: Stub) -> None:
    results = batch(
        stub,
        assign("C", "open"),
        assign("D", "open"),
        pause("C", "pause"),
    )

    assert results[0].result.events_recorded == 1
    assert results[1].error.code == code_pb2.ALREADY_EXISTS
    (info,) = unpack(results[1].error.details, error_details_pb2.ErrorInfo)
    assert info.reason == "COMMAND_ID_REUSED"
    assert (info.metadata["original_case_id"], info.metadata["original_kind"]) == ("C", "Assign")
    assert results[2].result.version == 2
    assert {e.case_id for e in all_events(stub)} == {"C"}


def test_a_batch_replays_commands_stored_by_earlier_calls(stub: Stub, ledger: Ledger) -> None:
    first = stub.Assign(assign("C", "open")).result
    second = batch(stub, pause("C", "pause"))[0].result
    head = ledger.store.max_position()

    again = [r.result for r in batch(stub, assign("C", "open"), pause("C", "pause"))]

    assert [r.replayed for r in again] == [True, True]
    assert [triple(r) for r in again] == [triple(first), triple(second)]
    assert ledger.store.max_position() == head


# --- everything accepted is stored -------------------------------------------------------------


def test_every_accepted_command_of_a_batch_is_stored_and_no_refused_one(stub: Stub) -> None:
    sent: list[Any] = []
    for n in range(6):
        case = f"CASE-{n}"
        sent += [
            assign(case, f"{case}/open"),
            join(case, f"{case}/join", "carol"),
            join(case, f"{case}/join-self", "alice"),  # refused: the owner
            pause(case, f"{case}/pause") if n % 2 else resume(case, f"{case}/resume"),
            transfer(case, f"{case}/to-carol", pb.Owner(agent_id="carol")),
            resolve(case, f"{case}/resolve"),
            reopen(case, f"{case}/reopen") if n % 3 else leave(case, f"{case}/leave", "x"),
        ]
    results = batch(stub, *sent)

    accepted = [r.result for r in results if r.HasField("result")]
    refused = [req.command_id for req, r in zip(sent, results, strict=True) if r.HasField("error")]
    events = all_events(stub)
    assert len(events) == sum(r.events_recorded for r in accepted)
    assert {e.command_id for e in events} == {r.command_id for r in accepted if r.events_recorded}
    assert not {e.command_id for e in events} & set(refused)
    last_event_of = {e.command_id: e for e in events}
    for result in accepted:
        event = last_event_of[result.command_id]
        assert (event.case_id, event.version, event.position) == (
            result.case_id,
            result.version,
            result.position,
        )
    assert len(refused) == 6 + 3 + 2  # join-self everywhere, resume x3, leave x2


def test_an_empty_batch_answers_with_no_results(stub: Stub) -> None:
    assert list(stub.ExecuteBatch(pb.ExecuteBatchRequest()).results) == []
    assert all_events(stub) == []

"""Idempotency keys (command_id) and optimistic concurrency (expected_version) over gRPC."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc

from ownership.v1 import ledger_pb2 as pb
from ownership.v1 import ledger_pb2_grpc
from services.bootstrap import Ledger
from services.ledger.api.server import channel
from tests.e2e.conftest import start_ledger
from tests.e2e.wire import (
    ALICE,
    BOB,
    all_events,
    answer,
    assign,
    error_info,
    refusal,
    request,
    transfer,
    ts,
)

Stub = ledger_pb2_grpc.LedgerServiceStub

CAROL = pb.Owner(agent_id="carol", group_id="platform-l3")


# --- helpers ------------------------------------------------------------------------------------


def story(case_id: str) -> list[tuple[str, Any]]:
    """One command of every kind, in an order the rules accept."""
    return [
        ("Assign", assign(case_id, f"{case_id}/1", tier=pb.TIER_L1, note="opened")),
        ("Transfer", transfer(case_id, f"{case_id}/2", BOB, tier=pb.TIER_L2, warm=True)),
        (
            "JoinSwarm",
            request(
                pb.JoinSwarmRequest,
                case_id,
                f"{case_id}/3",
                agent_id="carol",
                role=pb.SWARM_ROLE_CONSULTANT,
            ),
        ),
        (
            "Pause",
            request(
                pb.PauseRequest, case_id, f"{case_id}/4", reason=pb.PAUSE_REASON_AWAITING_CUSTOMER
            ),
        ),
        ("Resume", request(pb.ResumeRequest, case_id, f"{case_id}/5", note="customer replied")),
        ("LeaveSwarm", request(pb.LeaveSwarmRequest, case_id, f"{case_id}/6", agent_id="carol")),
        ("Resolve", request(pb.ResolveRequest, case_id, f"{case_id}/7", resolution_code="fix")),
        ("Reopen", request(pb.ReopenRequest, case_id, f"{case_id}/8", reason="came back")),
    ]


@contextmanager
def serving(database_url: str) -> Iterator[tuple[Ledger, Stub]]:
    """A ledger process of the test's own, so that the test can stop and start it again."""
    running = start_ledger(database_url)
    try:
        with channel(f"127.0.0.1:{running.server.port}") as chan:
            yield running, ledger_pb2_grpc.LedgerServiceStub(chan)
    finally:
        running.stop(grace=1)


# --- same command again -------------------------------------------------------------------------


def test_resending_any_command_answers_the_original_result_and_stores_nothing(stub: Stub) -> None:
    originals = [getattr(stub, method)(req).result for method, req in story("C")]
    assert [r.version for r in originals] == list(range(1, 9))
    assert not any(r.replayed for r in originals)
    history = all_events(stub)

    for (method, req), original in zip(story("C"), originals, strict=True):
        again = getattr(stub, method)(req).result
        assert again.replayed, method
        assert answer(again) == answer(original), method

    assert all_events(stub) == history


def test_a_replay_answers_the_original_version_and_position_after_the_case_moved_on(
    stub: Stub, ledger: Ledger
) -> None:
    first = stub.Assign(assign("C", "open")).result
    stub.Transfer(transfer("C", "to-bob", BOB))
    stub.Transfer(transfer("C", "to-carol", CAROL))
    head = ledger.store.max_position()

    again = stub.Assign(assign("C", "open")).result

    assert (again.version, again.position, again.events_recorded) == (1, first.position, 1)
    assert again.replayed
    assert ledger.store.max_position() == head


def test_a_retry_without_occurred_at_is_the_same_command_though_time_has_passed(
    stub: Stub,
) -> None:
    stub.Assign(assign("C", "open"))
    pause = request(pb.PauseRequest, "C", "pause", reason=pb.PAUSE_REASON_SCHEDULED)
    first = stub.Pause(pause).result
    threading.Event().wait(0.05)

    again = stub.Pause(pause).result

    assert again.replayed and answer(again) == answer(first)
    assert len(all_events(stub)) == 2


def test_a_retry_with_a_stale_expected_version_is_replayed_rather_than_aborted(
    stub: Stub,
) -> None:
    """The idempotency check comes first: the original was accepted, so its retry is too."""
    first = stub.Assign(assign("C", "open", expected_version=0)).result
    moved = transfer("C", "move", BOB, expected_version=1)
    second = stub.Transfer(moved).result
    stub.Transfer(transfer("C", "back", ALICE))

    assert answer(stub.Assign(assign("C", "open", expected_version=0)).result) == answer(first)
    assert answer(stub.Transfer(moved).result) == answer(second)
    assert len(all_events(stub)) == 3


def test_a_command_is_replayed_after_the_server_restarts(database_url: str) -> None:
    with serving(database_url) as (_, stub):
        originals = [getattr(stub, method)(req).result for method, req in story("C")]
        history = all_events(stub)

    with serving(database_url) as (restarted, stub):
        for (method, req), original in zip(story("C"), originals, strict=True):
            again = getattr(stub, method)(req).result
            assert again.replayed, method
            assert answer(again) == answer(original), method

        reused = refusal(stub.Assign, assign("C", "C/1", owner=BOB))
        assert reused.code() == grpc.StatusCode.ALREADY_EXISTS
        assert all_events(stub) == history
        assert restarted.store.max_position() == len(history)

        after = stub.Pause(
            request(pb.PauseRequest, "C", "later", reason=pb.PAUSE_REASON_AWAITING_CUSTOMER)
        ).result
        assert (after.version, after.replayed) == (9, False)


def test_a_no_op_is_replayed_after_the_server_restarts(database_url: str) -> None:
    with serving(database_url) as (_, stub):
        opened = stub.Assign(assign("C", "open")).result
        no_op = stub.Transfer(transfer("C", "to-alice", ALICE)).result
        assert no_op.events_recorded == 0
        stub.Transfer(transfer("C", "to-bob", BOB))

    with serving(database_url) as (_, stub):
        again = stub.Transfer(transfer("C", "to-alice", ALICE)).result
        assert again.replayed
        assert (again.version, again.position, again.events_recorded) == (1, opened.position, 0)
        owners = [e.transferred.to_owner.agent_id for e in all_events(stub)[1:]]
        assert owners == ["bob"]


# --- a command_id reused for something else -----------------------------------------------------


def test_reusing_a_command_id_for_a_different_request_is_refused_and_stores_nothing(
    stub: Stub, ledger: Ledger
) -> None:
    stub.Assign(assign("C", "open"))
    stub.Assign(assign("OTHER", "open-other"))
    stub.Transfer(transfer("C", "move", BOB))
    head = ledger.store.max_position()
    a_minute_ago = datetime.now(UTC) - timedelta(minutes=1)

    # What differs from the stored command, the request, and the kind the key was first used for.
    variants: list[tuple[str, str, Any, str]] = [
        ("note", "Transfer", transfer("C", "move", BOB, note="another note"), "Transfer"),
        ("owner", "Transfer", transfer("C", "move", CAROL), "Transfer"),
        (
            "reason",
            "Transfer",
            transfer("C", "move", BOB, reason=pb.TRANSFER_REASON_REROUTE),
            "Transfer",
        ),
        ("warm", "Transfer", transfer("C", "move", BOB, warm=True), "Transfer"),
        (
            "occurred_at",
            "Transfer",
            transfer("C", "move", BOB, occurred_at=ts(a_minute_ago)),
            "Transfer",
        ),
        (
            "expected_version",
            "Transfer",
            transfer("C", "move", BOB, expected_version=1),
            "Transfer",
        ),
        ("actor", "Transfer", transfer("C", "move", BOB, actor="someone else"), "Transfer"),
        ("case", "Transfer", transfer("OTHER", "move", BOB), "Transfer"),
        (
            "kind",
            "Pause",
            request(pb.PauseRequest, "C", "move", reason=pb.PAUSE_REASON_AWAITING_CUSTOMER),
            "Transfer",
        ),
        ("new case", "Assign", assign("NEW", "open"), "Assign"),
    ]
    for what, method, req, original_kind in variants:
        error = refusal(getattr(stub, method), req)

        assert error.code() == grpc.StatusCode.ALREADY_EXISTS, what
        info = error_info(error)
        assert info.reason == "COMMAND_ID_REUSED", what
        assert info.domain == "ownership.v1", what
        assert info.metadata["command_id"] == req.command_id, what
        assert info.metadata["original_kind"] == original_kind, what
        assert info.metadata["original_case_id"] == "C", what
        assert ledger.store.max_position() == head, what


# --- no-ops -------------------------------------------------------------------------------------


def test_a_no_op_retried_after_a_real_transfer_still_answers_the_no_op(
    stub: Stub, ledger: Ledger
) -> None:
    opened = stub.Assign(assign("C", "open")).result
    no_op = stub.Transfer(transfer("C", "to-alice", ALICE)).result
    assert (no_op.version, no_op.position, no_op.events_recorded) == (1, opened.position, 0)
    assert not no_op.replayed

    moved = stub.Transfer(transfer("C", "to-bob", BOB)).result
    assert (moved.version, moved.events_recorded) == (2, 1)

    again = stub.Transfer(transfer("C", "to-alice", ALICE)).result
    assert again.replayed
    assert (again.version, again.position, again.events_recorded) == (1, opened.position, 0)
    events = stub.ReadCase(pb.ReadCaseRequest(case_id="C")).events
    assert [e.version for e in events] == [1, 2]
    assert events[-1].transferred.to_owner.agent_id == "bob"
    assert ledger.store.max_position() == moved.position


def test_a_no_op_assign_retried_after_a_transfer_is_replayed_rather_than_refused(
    stub: Stub,
) -> None:
    stub.Assign(assign("C", "open"))
    no_op = stub.Assign(assign("C", "assign-again")).result
    assert (no_op.version, no_op.events_recorded) == (1, 0)
    stub.Transfer(transfer("C", "to-bob", BOB))

    again = stub.Assign(assign("C", "assign-again")).result

    assert again.replayed and answer(again) == answer(no_op)
    assert len(all_events(stub)) == 2


def test_a_no_op_swarm_join_retried_after_leaving_does_not_join_again(stub: Stub) -> None:
    stub.Assign(assign("C", "open"))
    join = request(pb.JoinSwarmRequest, "C", "join", agent_id="carol", role=pb.SWARM_ROLE_OBSERVER)
    stub.JoinSwarm(join)
    same_again = request(
        pb.JoinSwarmRequest, "C", "join-again", agent_id="carol", role=pb.SWARM_ROLE_OBSERVER
    )
    no_op = stub.JoinSwarm(same_again).result
    assert (no_op.version, no_op.events_recorded) == (2, 0)
    stub.LeaveSwarm(request(pb.LeaveSwarmRequest, "C", "leave", agent_id="carol"))

    again = stub.JoinSwarm(same_again).result

    assert again.replayed and answer(again) == answer(no_op)
    kinds = [e.WhichOneof("payload") for e in all_events(stub)]
    assert kinds == ["assigned", "swarm_joined", "swarm_left"]


# --- expected_version ---------------------------------------------------------------------------


def version_conflict(error: grpc.RpcError) -> dict[str, str]:
    assert error.code() == grpc.StatusCode.ABORTED, error.details()
    info = error_info(error)
    assert info.reason == "VERSION_CONFLICT"
    assert info.domain == "ownership.v1"
    return dict(info.metadata)


def test_a_stale_expected_version_is_aborted_with_the_current_version(
    stub: Stub, ledger: Ledger
) -> None:
    stub.Assign(assign("C", "open"))
    stub.Transfer(transfer("C", "to-bob", BOB))
    head = ledger.store.max_position()

    stale = request(
        pb.PauseRequest,
        "C",
        "pause",
        reason=pb.PAUSE_REASON_AWAITING_CUSTOMER,
        expected_version=1,
    )
    metadata = version_conflict(refusal(stub.Pause, stale))

    assert metadata == {"case_id": "C", "expected_version": "1", "current_version": "2"}
    assert ledger.store.max_position() == head


def test_an_expected_version_ahead_of_the_case_is_aborted(stub: Stub, ledger: Ledger) -> None:
    stub.Assign(assign("C", "open"))
    ahead = transfer("C", "to-bob", BOB, expected_version=5)
    assert version_conflict(refusal(stub.Transfer, ahead))["current_version"] == "1"
    assert ledger.store.max_position() == 1


def test_expected_version_zero_on_an_existing_case_is_aborted(stub: Stub, ledger: Ledger) -> None:
    stub.Assign(assign("C", "open"))

    # Even a request that would otherwise be an accepted no-op: the case was expected not to exist.
    same_owner = assign("C", "assign-again", expected_version=0)
    assert version_conflict(refusal(stub.Assign, same_owner))["current_version"] == "1"
    moved = transfer("C", "to-bob", BOB, expected_version=0)
    assert version_conflict(refusal(stub.Transfer, moved))["current_version"] == "1"
    assert ledger.store.max_position() == 1


def test_expected_version_zero_creates_a_case_and_any_other_is_aborted_for_a_new_case(
    stub: Stub, ledger: Ledger
) -> None:
    too_far = assign("NEW", "open-1", expected_version=1)
    assert version_conflict(refusal(stub.Assign, too_far))["current_version"] == "0"
    assert ledger.store.max_position() == 0

    created = stub.Assign(assign("NEW", "open-0", expected_version=0)).result
    assert (created.version, created.events_recorded) == (1, 1)


def test_the_correct_expected_version_is_accepted_at_every_step(stub: Stub) -> None:
    version = 0
    for method, req in story("C"):
        req.expected_version = version
        result = getattr(stub, method)(req).result
        assert result.version > version, method
        version = result.version
    no_op = stub.Transfer(transfer("C", "no-op", BOB, expected_version=version)).result
    # The story hands the case to Bob, so a transfer to Bob changes nothing.
    assert (no_op.version, no_op.events_recorded) == (version, 0)


def test_of_writers_racing_with_the_same_expected_version_exactly_one_wins(
    stub: Stub, ledger: Ledger
) -> None:
    stub.Assign(assign("C", "open"))
    contenders = [pb.Owner(agent_id=f"agent-{i}") for i in range(8)]
    start = threading.Barrier(len(contenders))

    def contend(i: int) -> pb.AppendResult | grpc.RpcError:
        req = transfer("C", f"take-{i}", contenders[i], expected_version=1)
        start.wait()
        try:
            return stub.Transfer(req).result
        except grpc.RpcError as error:
            return error

    with ThreadPoolExecutor(len(contenders)) as pool:
        outcomes = list(pool.map(contend, range(len(contenders))))

    winners = [o for o in outcomes if isinstance(o, pb.AppendResult)]
    losers = [o for o in outcomes if isinstance(o, grpc.RpcError)]
    assert len(winners) == 1
    assert winners[0].version == 2
    for error in losers:
        assert version_conflict(error)["current_version"] == "2"
    events = all_events(stub)
    assert len(events) == 2
    assert events[1].command_id == winners[0].command_id
    assert ledger.store.max_position() == 2


def test_concurrent_copies_of_one_command_are_recorded_once(stub: Stub) -> None:
    copies = 8
    start = threading.Barrier(copies)

    def send(_: int) -> pb.AppendResult:
        req = assign("C", "open", tier=pb.TIER_L2)
        start.wait()
        return stub.Assign(req).result

    with ThreadPoolExecutor(copies) as pool:
        results = list(pool.map(send, range(copies)))

    assert sum(not r.replayed for r in results) == 1
    assert {answer(r) for r in results} == {("C", "open", 1, results[0].position, 1)}
    assert len(all_events(stub)) == 1

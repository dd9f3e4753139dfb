"""The case rules as a gRPC caller meets them: refusals with the rule's code, and what is accepted."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.protobuf.message import Message
from google.rpc import error_details_pb2

from ownership.v1 import ledger_pb2 as pb
from ownership.v1 import ledger_pb2_grpc
from services.bootstrap import Ledger
from services.ledger.domain.errors import Rule
from tests.e2e.wire import ALICE, BOB, details, refusal

Stub = ledger_pb2_grpc.LedgerServiceStub


# --- helpers ------------------------------------------------------------------------------------


class Case:
    """Sends commands on one case with fresh command_ids."""

    def __init__(self, stub: Stub, case_id: str = "C") -> None:
        self.stub = stub
        self.case_id = case_id
        self.sent = 0

    def req(self, kind: type[Message], **fields: Any) -> Any:
        self.sent += 1
        common = {"case_id": self.case_id, "command_id": f"{self.case_id}/{self.sent}"}
        return kind(**(common | {"actor": "tester"} | fields))

    def assign(self, owner: pb.Owner = ALICE, **fields: Any) -> Any:
        return self.req(pb.AssignRequest, owner=owner, **fields)

    def transfer(self, to_owner: pb.Owner, **fields: Any) -> Any:
        fields.setdefault("reason", pb.TRANSFER_REASON_ESCALATION)
        return self.req(pb.TransferRequest, to_owner=to_owner, **fields)

    def join(self, agent_id: str, role: int = pb.SWARM_ROLE_CONSULTANT, **fields: Any) -> Any:
        return self.req(pb.JoinSwarmRequest, agent_id=agent_id, role=role, **fields)

    def leave(self, agent_id: str) -> Any:
        return self.req(pb.LeaveSwarmRequest, agent_id=agent_id)

    def pause(self, reason: int = pb.PAUSE_REASON_AWAITING_CUSTOMER) -> Any:
        return self.req(pb.PauseRequest, reason=reason)

    def resume(self) -> Any:
        return self.req(pb.ResumeRequest)

    def resolve(self) -> Any:
        return self.req(pb.ResolveRequest, resolution_code="fixed")

    def reopen(self) -> Any:
        return self.req(pb.ReopenRequest, reason="came back")

    def do(self, method: str, req: Any) -> pb.AppendResult:
        return getattr(self.stub, method)(req).result

    def events(self) -> list[pb.Event]:
        return list(self.stub.ReadCase(pb.ReadCaseRequest(case_id=self.case_id)).events)


def assert_rule(error: grpc.RpcError, rule: Rule, case_id: str = "C") -> None:
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION, error.details()
    (info,) = details(error, error_details_pb2.ErrorInfo)
    assert info.reason == rule.value
    assert info.domain == "ownership.v1"
    assert info.metadata["case_id"] == case_id
    (failure,) = details(error, error_details_pb2.PreconditionFailure)
    (violation,) = failure.violations
    assert (violation.type, violation.subject) == (rule.value, case_id)


def refused_by(case: Case, method: str, req: Any, rule: Rule, ledger: Ledger) -> None:
    """The command is refused for ``rule`` and nothing is stored."""
    head = ledger.store.max_position()
    assert_rule(refusal(getattr(case.stub, method), req), rule, case.case_id)
    assert ledger.store.max_position() == head, f"{method} refused but something was stored"


def payloads(events: list[pb.Event]) -> list[str]:
    return [e.WhichOneof("payload") for e in events]


@pytest.fixture
def case(stub: Stub) -> Case:
    opened = Case(stub)
    opened.do("Assign", opened.assign(tier=pb.TIER_L1))
    return opened


# --- a resolved case takes only Reopen ----------------------------------------------------------


def test_a_resolved_case_refuses_every_command_but_reopen(case: Case, ledger: Ledger) -> None:
    case.do("JoinSwarm", case.join("carol"))
    case.do("Pause", case.pause())
    case.do("Resolve", case.resolve())

    refusals: list[tuple[str, Any]] = [
        ("Assign", case.assign(ALICE)),  # even the current owner
        ("Assign", case.assign(BOB)),
        ("Transfer", case.transfer(BOB)),
        ("Transfer", case.transfer(ALICE)),
        ("JoinSwarm", case.join("dave")),
        ("LeaveSwarm", case.leave("carol")),
        ("Pause", case.pause()),
        ("Resume", case.resume()),
        ("Resolve", case.resolve()),
    ]
    for method, req in refusals:
        refused_by(case, method, req, Rule.CASE_RESOLVED, ledger)

    reopened = case.do("Reopen", case.reopen())
    assert reopened.events_recorded == 1
    assert payloads(case.events())[-1] == "reopened"


def test_a_reopened_case_returns_to_its_resolver_open_unpaused_and_without_a_swarm(
    case: Case, ledger: Ledger
) -> None:
    case.do("Transfer", case.transfer(BOB))
    case.do("JoinSwarm", case.join("carol"))
    case.do("Pause", case.pause())
    case.do("Resolve", case.resolve())
    case.do("Reopen", case.reopen())

    # Back with the resolver: a transfer to Bob records nothing, an Assign to Alice is refused.
    assert case.do("Transfer", case.transfer(BOB)).events_recorded == 0
    refused_by(case, "Assign", case.assign(ALICE), Rule.CASE_ALREADY_ASSIGNED, ledger)
    # The resolution ended the pause and the swarm.
    refused_by(case, "Resume", case.resume(), Rule.NOT_PAUSED, ledger)
    refused_by(case, "LeaveSwarm", case.leave("carol"), Rule.NOT_IN_SWARM, ledger)
    refused_by(case, "Reopen", case.reopen(), Rule.CASE_NOT_RESOLVED, ledger)
    assert case.do("Pause", case.pause()).events_recorded == 1
    assert case.do("JoinSwarm", case.join("carol")).events_recorded == 1


# --- the other rules ----------------------------------------------------------------------------


def test_the_owner_cannot_join_their_own_swarm(case: Case, ledger: Ledger) -> None:
    refused_by(case, "JoinSwarm", case.join("alice"), Rule.OWNER_CANNOT_JOIN_OWN_SWARM, ledger)
    in_other_group = case.join("alice", group_id="elsewhere", role=pb.SWARM_ROLE_OBSERVER)
    refused_by(case, "JoinSwarm", in_other_group, Rule.OWNER_CANNOT_JOIN_OWN_SWARM, ledger)


def test_leaving_a_swarm_one_is_not_in_is_refused(case: Case, ledger: Ledger) -> None:
    refused_by(case, "LeaveSwarm", case.leave("carol"), Rule.NOT_IN_SWARM, ledger)
    case.do("JoinSwarm", case.join("carol"))
    case.do("LeaveSwarm", case.leave("carol"))
    refused_by(case, "LeaveSwarm", case.leave("carol"), Rule.NOT_IN_SWARM, ledger)


def test_joining_again_with_another_role_is_refused_and_with_the_same_role_is_a_no_op(
    case: Case, ledger: Ledger
) -> None:
    joined = case.do("JoinSwarm", case.join("carol", role=pb.SWARM_ROLE_CONTRIBUTOR))
    other_role = case.join("carol", role=pb.SWARM_ROLE_OBSERVER)
    refused_by(case, "JoinSwarm", other_role, Rule.ALREADY_IN_SWARM, ledger)

    same = case.do("JoinSwarm", case.join("carol", role=pb.SWARM_ROLE_CONTRIBUTOR))
    assert (same.version, same.position, same.events_recorded) == (
        joined.version,
        joined.position,
        0,
    )


def test_resuming_a_case_that_is_not_paused_is_refused(case: Case, ledger: Ledger) -> None:
    refused_by(case, "Resume", case.resume(), Rule.NOT_PAUSED, ledger)
    case.do("Pause", case.pause())
    case.do("Resume", case.resume())
    refused_by(case, "Resume", case.resume(), Rule.NOT_PAUSED, ledger)


def test_pausing_a_paused_case_is_refused_whatever_the_reason(case: Case, ledger: Ledger) -> None:
    case.do("Pause", case.pause(pb.PAUSE_REASON_AWAITING_CUSTOMER))
    for reason in (pb.PAUSE_REASON_AWAITING_CUSTOMER, pb.PAUSE_REASON_SCHEDULED):
        refused_by(case, "Pause", case.pause(reason), Rule.ALREADY_PAUSED, ledger)


def test_the_resume_names_the_reason_of_the_pause_it_ends(case: Case) -> None:
    case.do("Pause", case.pause(pb.PAUSE_REASON_AWAITING_THIRD_PARTY))
    case.do("Resume", case.resume())
    assert case.events()[-1].resumed.reason == pb.PAUSE_REASON_AWAITING_THIRD_PARTY


def test_assigning_an_existing_case_to_another_owner_is_refused(case: Case, ledger: Ledger) -> None:
    refused_by(case, "Assign", case.assign(BOB), Rule.CASE_ALREADY_ASSIGNED, ledger)
    # Same person in another group is another owner too.
    other_group = pb.Owner(agent_id="alice", group_id="elsewhere")
    refused_by(case, "Assign", case.assign(other_group), Rule.CASE_ALREADY_ASSIGNED, ledger)


def test_assigning_an_existing_case_to_its_owner_is_accepted_and_records_nothing(
    case: Case, ledger: Ledger
) -> None:
    head = ledger.store.max_position()
    again = case.do("Assign", case.assign(ALICE, tier=pb.TIER_L3, note="again"))
    assert (again.version, again.position, again.events_recorded) == (1, head, 0)
    assert ledger.store.max_position() == head


def test_reopening_a_case_that_is_not_resolved_is_refused(case: Case, ledger: Ledger) -> None:
    refused_by(case, "Reopen", case.reopen(), Rule.CASE_NOT_RESOLVED, ledger)
    case.do("Pause", case.pause())
    refused_by(case, "Reopen", case.reopen(), Rule.CASE_NOT_RESOLVED, ledger)
    case.do("Resume", case.resume())
    case.do("Resolve", case.resolve())
    case.do("Reopen", case.reopen())
    refused_by(case, "Reopen", case.reopen(), Rule.CASE_NOT_RESOLVED, ledger)


# --- unknown cases ------------------------------------------------------------------------------


def test_a_command_on_an_unknown_case_is_not_found(stub: Stub, ledger: Ledger) -> None:
    unknown = Case(stub, "NO-SUCH-CASE")
    for method, req in [
        ("Transfer", unknown.transfer(BOB)),
        ("JoinSwarm", unknown.join("carol")),
        ("LeaveSwarm", unknown.leave("carol")),
        ("Pause", unknown.pause()),
        ("Resume", unknown.resume()),
        ("Resolve", unknown.resolve()),
        ("Reopen", unknown.reopen()),
    ]:
        error = refusal(getattr(stub, method), req)

        assert error.code() == grpc.StatusCode.NOT_FOUND, method
        (resource,) = details(error, error_details_pb2.ResourceInfo)
        assert resource.resource_type == "ownership.v1.Case", method
        assert resource.resource_name == "NO-SUCH-CASE", method
    assert ledger.store.max_position() == 0


def test_assign_opens_an_unknown_case(stub: Stub) -> None:
    fresh = Case(stub, "NEW")
    opened = fresh.do("Assign", fresh.assign(pb.Owner(group_id="queue"), tier=pb.TIER_L2))
    assert (opened.version, opened.events_recorded, opened.replayed) == (1, 1, False)
    (event,) = fresh.events()
    assert event.assigned.owner.group_id == "queue"
    assert event.assigned.tier == pb.TIER_L2


def test_reading_an_unknown_case_is_not_found(stub: Stub, case: Case) -> None:
    error = refusal(stub.ReadCase, pb.ReadCaseRequest(case_id="NO-SUCH-CASE"))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    (resource,) = details(error, error_details_pb2.ResourceInfo)
    assert resource.resource_name == "NO-SUCH-CASE"
    # A known case read past its end is simply empty.
    beyond = stub.ReadCase(pb.ReadCaseRequest(case_id=case.case_id, after_version=5))
    assert list(beyond.events) == []


def test_reading_a_case_id_holding_a_nul_is_not_a_server_fault(stub: Stub) -> None:
    error = refusal(stub.ReadCase, pb.ReadCaseRequest(case_id="NO\x00SUCH"))
    assert error.code() in {grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT}, (
        error.code(),
        error.details(),
    )


# --- what is accepted ---------------------------------------------------------------------------


def test_the_same_person_may_leave_and_rejoin_a_swarm_in_another_role(case: Case) -> None:
    case.do("JoinSwarm", case.join("carol", role=pb.SWARM_ROLE_CONSULTANT))
    case.do("LeaveSwarm", case.leave("carol"))
    rejoined = case.do("JoinSwarm", case.join("carol", role=pb.SWARM_ROLE_OBSERVER))
    case.do("LeaveSwarm", case.leave("carol"))

    assert rejoined.events_recorded == 1
    events = case.events()[1:]
    assert payloads(events) == ["swarm_joined", "swarm_left", "swarm_joined", "swarm_left"]
    assert [e.swarm_left.role for e in events if e.HasField("swarm_left")] == [
        pb.SWARM_ROLE_CONSULTANT,
        pb.SWARM_ROLE_OBSERVER,
    ]
    assert all(e.swarm_left.cause == pb.SWARM_EXIT_LEFT for e in events if e.HasField("swarm_left"))


def test_resolving_closes_every_open_swarm_participation_before_the_resolution(
    case: Case,
) -> None:
    case.do("JoinSwarm", case.join("dave", role=pb.SWARM_ROLE_OBSERVER))
    case.do("JoinSwarm", case.join("carol", role=pb.SWARM_ROLE_CONTRIBUTOR))
    case.do("JoinSwarm", case.join("erin"))
    case.do("LeaveSwarm", case.leave("erin"))

    resolve = case.resolve()
    resolved = case.do("Resolve", resolve)

    assert resolved.events_recorded == 3
    tail = case.events()[-3:]
    assert payloads(tail) == ["swarm_left", "swarm_left", "resolved"]
    assert [(e.swarm_left.agent_id, e.swarm_left.role) for e in tail[:2]] == [
        ("carol", pb.SWARM_ROLE_CONTRIBUTOR),
        ("dave", pb.SWARM_ROLE_OBSERVER),
    ]
    assert all(e.swarm_left.cause == pb.SWARM_EXIT_CASE_RESOLVED for e in tail[:2])
    assert {e.command_id for e in tail} == {resolve.command_id}
    assert [e.version for e in tail] == [
        resolved.version - 2,
        resolved.version - 1,
        resolved.version,
    ]
    assert tail[-1].position == resolved.position
    assert tail[-1].resolved.resolver.agent_id == "alice"


def test_transferring_to_a_swarm_member_ends_their_participation_first(case: Case) -> None:
    case.do("JoinSwarm", case.join("bob", group_id="identity-l2", role=pb.SWARM_ROLE_CONSULTANT))
    handover = case.transfer(BOB, tier=pb.TIER_L2)
    moved = case.do("Transfer", handover)

    assert moved.events_recorded == 2
    left, transferred = case.events()[-2:]
    assert left.swarm_left.agent_id == "bob"
    assert left.swarm_left.cause == pb.SWARM_EXIT_BECAME_OWNER
    assert left.swarm_left.role == pb.SWARM_ROLE_CONSULTANT
    assert transferred.transferred.from_owner.agent_id == "alice"
    assert transferred.transferred.to_owner.agent_id == "bob"
    assert (transferred.transferred.from_tier, transferred.transferred.to_tier) == (
        pb.TIER_L1,
        pb.TIER_L2,
    )
    assert left.command_id == transferred.command_id == handover.command_id
    assert transferred.position == moved.position


def test_after_a_handover_the_new_owner_cannot_join_and_the_old_owner_can(
    case: Case, ledger: Ledger
) -> None:
    case.do("JoinSwarm", case.join("bob"))
    case.do("Transfer", case.transfer(BOB))

    refused_by(case, "JoinSwarm", case.join("bob"), Rule.OWNER_CANNOT_JOIN_OWN_SWARM, ledger)
    refused_by(case, "LeaveSwarm", case.leave("bob"), Rule.NOT_IN_SWARM, ledger)
    assert case.do("JoinSwarm", case.join("alice")).events_recorded == 1


def test_a_transfer_without_a_tier_keeps_the_tier_and_a_queue_can_own_a_case(case: Case) -> None:
    case.do("Transfer", case.transfer(pb.Owner(group_id="l2-queue"), tier=pb.TIER_L2))
    case.do("Transfer", case.transfer(pb.Owner(agent_id="bob", group_id="l2-queue")))

    first, second = (e.transferred for e in case.events()[-2:])
    assert (first.from_tier, first.to_tier) == (pb.TIER_L1, pb.TIER_L2)
    assert (second.from_tier, second.to_tier) == (pb.TIER_L2, pb.TIER_L2)
    assert second.from_owner == pb.Owner(group_id="l2-queue")


def test_a_paused_case_can_be_resolved_and_the_pause_ends_with_it(case: Case) -> None:
    case.do("Pause", case.pause(pb.PAUSE_REASON_SCHEDULED))
    resolved = case.do("Resolve", case.resolve())
    assert resolved.events_recorded == 1
    assert payloads(case.events())[-2:] == ["paused", "resolved"]

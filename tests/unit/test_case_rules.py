"""Every ownership rule of the Case aggregate, without any I/O."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from services.ledger.domain.case import Case, Provenance
from services.ledger.domain.errors import Rule, RuleViolated
from services.ledger.domain.values import (
    CaseStatus,
    Owner,
    PauseReason,
    SwarmExit,
    SwarmRole,
    Tier,
    TransferReason,
)

ALICE = Owner("alice", "service-desk")
BOB = Owner("bob", "identity-l2")
WHEN = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def by(command_id: str = "cmd") -> Provenance:
    return Provenance(occurred_at=WHEN, actor="tester", command_id=command_id)


def opened() -> Case:
    case = Case.open("INC-1", ALICE, Tier.L1, "", by("open"))
    case.collect_events()
    return case


def kinds(case: Case) -> list[str]:
    return [type(e).__name__ for e in case.collect_events()]


def refused(rule: Rule, action: Callable[[], object]) -> None:
    with pytest.raises(RuleViolated) as caught:
        action()
    assert caught.value.rule is rule


def test_a_case_starts_with_an_assignment_to_its_first_owner() -> None:
    case = Case.open("INC-1", ALICE, Tier.L1, "first", by())
    assert (case.version, case.owner, case.tier, case.status) == (
        1,
        ALICE,
        Tier.L1,
        CaseStatus.OPEN,
    )
    [event] = case.collect_events()
    assert isinstance(event, Case.Assigned) and event.owner == ALICE and event.command_id == "cmd"


def test_assigning_to_the_current_owner_records_nothing() -> None:
    case = opened()
    assert case.assign(ALICE, by()) is False
    assert case.pending_events == [] and case.version == 1


def test_assigning_an_existing_case_to_someone_else_is_refused() -> None:
    case = opened()
    refused(Rule.CASE_ALREADY_ASSIGNED, lambda: case.assign(BOB, by()))
    assert case.owner == ALICE and case.pending_events == []


def test_transferring_to_the_current_owner_records_nothing() -> None:
    case = opened()
    assert case.transfer(ALICE, TransferReason.OTHER, Tier.L2, "", None, False, by()) is False
    assert case.pending_events == [] and case.tier is Tier.L1


def test_a_transfer_moves_accountability_and_tier_and_remembers_where_it_came_from() -> None:
    case = opened()
    assert case.transfer(BOB, TransferReason.ESCALATION, Tier.L2, "note", WHEN, True, by())
    [event] = case.collect_events()
    assert isinstance(event, Case.Transferred)
    assert (event.from_owner, event.to_owner, event.from_tier, event.to_tier) == (
        ALICE,
        BOB,
        Tier.L1,
        Tier.L2,
    )
    assert event.warm and event.eta == WHEN and case.owner == BOB


def test_a_transfer_without_a_tier_keeps_the_current_tier() -> None:
    case = opened()
    case.transfer(BOB, TransferReason.REROUTE, None, "", None, False, by())
    assert case.tier is Tier.L1


def test_moving_only_between_groups_is_a_transfer() -> None:
    case = opened()
    assert case.transfer(
        Owner("alice", "other"), TransferReason.REROUTE, None, "", None, False, by()
    )


def test_a_group_queue_can_own_a_case() -> None:
    case = Case.open("INC-9", Owner(group_id="network"), None, "", by())
    assert case.owner.agent_id == "" and not case.owner.is_person


def test_an_owner_needs_an_agent_or_a_group() -> None:
    with pytest.raises(ValueError, match="agent_id, a group_id or both"):
        Owner("", "")


def test_a_resolved_case_takes_only_reopen() -> None:
    case = opened()
    case.resolve("fixed", "", by())
    case.collect_events()
    for action in (
        lambda: case.assign(ALICE, by()),
        lambda: case.transfer(BOB, TransferReason.OTHER, None, "", None, False, by()),
        lambda: case.join_swarm("carol", "", SwarmRole.CONSULTANT, "", by()),
        lambda: case.leave_swarm("carol", "", by()),
        lambda: case.pause(PauseReason.SCHEDULED, None, "", by()),
        lambda: case.resume("", by()),
        lambda: case.resolve("again", "", by()),
    ):
        refused(Rule.CASE_RESOLVED, action)
    assert case.pending_events == []
    assert case.reopen("customer says still broken", "", by())
    assert case.status is CaseStatus.OPEN and case.owner == ALICE


def test_reopening_an_open_case_is_refused() -> None:
    case = opened()
    refused(Rule.CASE_NOT_RESOLVED, lambda: case.reopen("", "", by()))


def test_the_owner_cannot_join_its_own_swarm() -> None:
    case = opened()
    refused(
        Rule.OWNER_CANNOT_JOIN_OWN_SWARM,
        lambda: case.join_swarm("alice", "service-desk", SwarmRole.CONTRIBUTOR, "", by()),
    )


def test_leaving_a_swarm_you_are_not_in_is_refused() -> None:
    case = opened()
    refused(Rule.NOT_IN_SWARM, lambda: case.leave_swarm("carol", "", by()))


def test_the_same_person_may_leave_and_rejoin_a_swarm() -> None:
    case = opened()
    case.join_swarm("carol", "l3", SwarmRole.CONSULTANT, "", by())
    case.leave_swarm("carol", "", by())
    case.join_swarm("carol", "l3", SwarmRole.OBSERVER, "", by())
    assert kinds(case) == ["SwarmJoined", "SwarmLeft", "SwarmJoined"]
    assert case.swarm["carol"].role is SwarmRole.OBSERVER


def test_joining_again_in_the_same_role_records_nothing_and_in_another_role_is_refused() -> None:
    case = opened()
    case.join_swarm("carol", "l3", SwarmRole.CONSULTANT, "", by())
    case.collect_events()
    assert case.join_swarm("carol", "l3", SwarmRole.CONSULTANT, "", by()) is False
    refused(
        Rule.ALREADY_IN_SWARM, lambda: case.join_swarm("carol", "l3", SwarmRole.OBSERVER, "", by())
    )


def test_resuming_what_is_not_paused_is_refused() -> None:
    case = opened()
    refused(Rule.NOT_PAUSED, lambda: case.resume("", by()))


def test_pausing_what_is_paused_is_refused() -> None:
    case = opened()
    case.pause(PauseReason.AWAITING_CUSTOMER, None, "", by())
    refused(Rule.ALREADY_PAUSED, lambda: case.pause(PauseReason.SCHEDULED, None, "", by()))


def test_resume_names_the_pause_it_ends() -> None:
    case = opened()
    case.pause(PauseReason.AWAITING_THIRD_PARTY, None, "", by())
    case.resume("", by())
    resumed = case.collect_events()[-1]
    assert isinstance(resumed, Case.Resumed) and resumed.reason is PauseReason.AWAITING_THIRD_PARTY
    assert case.status is CaseStatus.OPEN


def test_resolving_closes_every_open_swarm_participation() -> None:
    case = opened()
    case.join_swarm("dave", "db", SwarmRole.CONTRIBUTOR, "", by())
    case.join_swarm("carol", "l3", SwarmRole.CONSULTANT, "", by())
    case.collect_events()
    case.resolve("fixed", "", by())
    events = case.collect_events()
    assert [type(e).__name__ for e in events] == ["SwarmLeft", "SwarmLeft", "Resolved"]
    assert {e.member_agent_id for e in events if isinstance(e, Case.SwarmLeft)} == {"carol", "dave"}
    assert all(e.cause is SwarmExit.CASE_RESOLVED for e in events if isinstance(e, Case.SwarmLeft))
    assert case.swarm == {}
    resolved = events[-1]
    assert isinstance(resolved, Case.Resolved) and resolved.resolver == ALICE


def test_resolving_a_paused_case_ends_the_pause() -> None:
    case = opened()
    case.pause(PauseReason.AWAITING_CUSTOMER, None, "", by())
    case.resolve("no reply", "", by())
    assert case.status is CaseStatus.RESOLVED and case.pause_reason is None


def test_a_swarm_member_who_takes_the_case_over_leaves_the_swarm() -> None:
    case = opened()
    case.join_swarm("bob", "identity-l2", SwarmRole.CONSULTANT, "", by())
    case.collect_events()
    case.transfer(BOB, TransferReason.ESCALATION, Tier.L2, "", None, True, by())
    left, transferred = case.collect_events()
    assert isinstance(left, Case.SwarmLeft) and left.cause is SwarmExit.BECAME_OWNER
    assert isinstance(transferred, Case.Transferred)
    assert "bob" not in case.swarm


def test_events_carry_producer_time_and_the_ledger_stamps_recording_time() -> None:
    case = Case.open("INC-1", ALICE, None, "", by())
    [event] = case.collect_events()
    assert event.occurred_at == WHEN
    assert event.recorded_at.tzinfo is not None and event.recorded_at > WHEN


def test_every_event_class_has_a_class_version() -> None:
    event_classes = [
        value
        for value in vars(Case).values()
        if isinstance(value, type) and issubclass(value, Case.Event) and value is not Case.Event
    ]
    assert len(event_classes) == 10
    assert all(cls.class_version >= 1 for cls in event_classes)


def test_an_activity_is_recorded_in_any_state_and_moves_nothing() -> None:
    # Real logs keep working a case after resolution (a closure, a note): the activity is kept,
    # the resolved case stays resolved with its owner, and only Reopen brings it back.
    case = opened()
    case.resolve("fixed", "", by("resolve"))
    case.collect_events()
    assert case.record_activity("Closed", "closed by the service desk", by("close"))
    [event] = case.collect_events()
    assert isinstance(event, Case.ActivityRecorded) and event.activity == "Closed"
    assert (case.status, case.owner) == (CaseStatus.RESOLVED, ALICE)
    refused(
        Rule.CASE_RESOLVED,
        lambda: case.transfer(BOB, TransferReason.OTHER, None, "", None, False, by()),
    )

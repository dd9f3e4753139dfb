"""Time rules and handoff figures, derived from a case's events without any I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.ledger.domain.case import Case, Provenance
from services.ledger.domain.values import Owner, PauseReason, SwarmRole, Tier, TransferReason
from services.projector.handoffs import handoff_stats, level_stats, runs
from services.projector.timeline import Level, derive

T0 = datetime(2026, 2, 2, 9, 0, tzinfo=UTC)
A = Owner("alice", "desk")
B = Owner("bob", "l2")
C = Owner("carol", "l3")


def at(minutes: int, command_id: str = "c") -> Provenance:
    return Provenance(T0 + timedelta(minutes=minutes), "tester", command_id)


def hand(
    case: Case, owner: Owner, minutes: int, tier: Tier | None = None, warm: bool = False
) -> None:
    case.transfer(owner, TransferReason.OTHER, tier, "", None, warm, at(minutes))


def test_a_returning_owner_opens_a_new_interval() -> None:
    case = Case.open("X", A, Tier.L1, "", at(0))
    hand(case, B, 30)
    hand(case, A, 90)
    timeline = derive("X", case.collect_events())
    assert [(t.holder, t.span.start, t.span.end) for t in timeline.person_tenures] == [
        ("alice", T0, T0 + timedelta(minutes=30)),
        ("bob", T0 + timedelta(minutes=30), T0 + timedelta(minutes=90)),
        ("alice", T0 + timedelta(minutes=90), None),
    ]
    assert [t.seq for t in timeline.person_tenures] == [1, 2, 3]


def test_resolution_ends_the_tenure_and_a_reopening_starts_a_new_one() -> None:
    case = Case.open("X", A, None, "", at(0))
    case.resolve("", "", at(60))
    case.reopen("", "", at(120))
    timeline = derive("X", case.collect_events())
    spans = [(t.span.start, t.span.end) for t in timeline.person_tenures]
    assert spans == [(T0, T0 + timedelta(minutes=60)), (T0 + timedelta(minutes=120), None)]
    assert timeline.resolutions[0].reopened_at == T0 + timedelta(minutes=120)


def test_a_late_event_is_placed_by_event_time_not_by_arrival() -> None:
    case = Case.open("X", A, None, "", at(0))
    hand(case, B, 60)
    hand(case, C, 30)  # recorded after the move to bob, but it happened before it
    timeline = derive("X", case.collect_events())
    assert [(t.holder, t.span.start) for t in timeline.person_tenures] == [
        ("alice", T0),
        ("carol", T0 + timedelta(minutes=30)),
        ("bob", T0 + timedelta(minutes=60)),
    ]
    assert [o.agent_id for o in timeline.owner_sequence] == ["alice", "carol", "bob"]


def test_equal_times_fall_back_to_the_ledger_order() -> None:
    case = Case.open("X", A, None, "", at(0))
    hand(case, B, 10)
    hand(case, C, 10)
    timeline = derive("X", case.collect_events())
    assert [t.holder for t in timeline.person_tenures] == ["alice", "bob", "carol"]
    assert timeline.person_tenures[1].span.length(T0) == timedelta(0)


def test_a_pause_ended_before_it_started_is_clamped_to_zero_and_flagged() -> None:
    case = Case.open("X", A, None, "", at(0))
    case.pause(PauseReason.AWAITING_CUSTOMER, None, "", at(60))
    case.resume("", at(55))  # the resuming producer's clock runs behind
    timeline = derive("X", case.collect_events())
    [pause] = timeline.pauses
    assert pause.span.clamped
    assert pause.span.length(T0 + timedelta(days=1)) == timedelta(0)


def test_a_reopening_stamped_before_its_resolution_does_not_end_ownership_for_good() -> None:
    case = Case.open("X", A, None, "", at(0))
    case.resolve("", "", at(60))
    case.reopen("", "", at(59))
    hand(case, B, 120)
    timeline = derive("X", case.collect_events())
    assert [t.holder for t in timeline.person_tenures][-1] == "bob"
    assert timeline.person_tenures[-1].span.end is None


def test_paused_time_is_broken_out_by_reason_within_a_tenure() -> None:
    case = Case.open("X", A, None, "", at(0))
    case.pause(PauseReason.AWAITING_CUSTOMER, None, "", at(10))
    case.resume("", at(40))
    case.pause(PauseReason.AWAITING_THIRD_PARTY, None, "", at(50))
    case.resume("", at(55))
    hand(case, B, 100)
    timeline = derive("X", case.collect_events())
    alice = timeline.person_tenures[0]
    assert timeline.paused_within(alice.span, T0) == {
        PauseReason.AWAITING_CUSTOMER: timedelta(minutes=30),
        PauseReason.AWAITING_THIRD_PARTY: timedelta(minutes=5),
    }


def test_swarm_participation_spans_join_to_leave() -> None:
    case = Case.open("X", A, None, "", at(0))
    case.join_swarm("dave", "db", SwarmRole.CONTRIBUTOR, "", at(5))
    case.leave_swarm("dave", "", at(25))
    [participation] = derive("X", case.collect_events()).swarm
    assert participation.span.length(T0) == timedelta(minutes=20)


def test_group_queue_periods_are_ignored_at_the_person_level() -> None:
    owners = [A, Owner(group_id="desk"), A, B]
    assert runs(owners, Level.PERSON) == ["alice", "bob"]
    assert runs(owners, Level.GROUP) == ["desk", "l2"]


def test_ping_pong_figures_follow_their_definitions() -> None:
    stats = level_stats(["a", "b", "a", "b", "c", "a"])
    assert (stats.changes, stats.stations, stats.unique_owners) == (5, 6, 3)
    assert stats.returns == 3  # a, b and a again each come back to an earlier owner
    assert stats.pingpong_returns == 2  # k=3 (a) and k=4 (b)
    assert stats.longest_pingpong == 4
    assert stats.edges[("a", "b")] == 2


def test_no_ping_pong_without_a_return_two_steps_back() -> None:
    stats = level_stats(["a", "b", "c"])
    assert (stats.pingpong_returns, stats.longest_pingpong, stats.returns) == (0, 0, 0)


def test_warm_share_and_tiers_crossed_come_from_transfers() -> None:
    case = Case.open("X", A, Tier.L1, "", at(0))
    hand(case, B, 10, Tier.L3, warm=True)
    hand(case, C, 20, Tier.L2)
    stats = handoff_stats(derive("X", case.collect_events()))
    assert (stats.warm, stats.cold, stats.tiers_crossed) == (1, 1, 3)

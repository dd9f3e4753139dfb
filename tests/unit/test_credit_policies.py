"""Credit policies on timelines derived from real Case histories, without any I/O."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from services.ledger.domain.case import Case, Provenance
from services.ledger.domain.values import Owner, PauseReason, SwarmRole, Tier, TransferReason
from services.projector.credit import (
    ASSIST,
    CREDIT,
    POLICIES,
    REVERSAL,
    CreditEntry,
    CreditPolicy,
    EqualSplit,
    FirstOwnerTakesAll,
    OverlayAssists,
    OwnerBonus,
    Party,
    ResolverTakesAll,
    TimeWeighted,
    UnknownPolicy,
    credit_entries,
    default_is_bot,
    net_totals,
    resolve_policy,
)
from services.projector.timeline import CaseTimeline, derive

ALICE = Owner("alice", "service-desk")
BOB = Owner("bob", "identity-l2")
A = Party("alice", "service-desk")
B = Party("bob", "identity-l2")
C = Party("carol", "platform-l3")
DAY = datetime(2026, 3, 2, tzinfo=UTC)


def at(hour: int, minute: int = 0) -> Provenance:
    return Provenance(DAY.replace(hour=hour, minute=minute), "tester", f"cmd-{hour}:{minute}")


def hand(case: Case, to: Owner, when: Provenance, tier: Tier | None = None) -> None:
    case.transfer(to, TransferReason.ESCALATION, tier, "", None, True, when)


def timeline_of(case: Case) -> CaseTimeline:
    return derive(case.id, cast(list[Case.Event], case.collect_events()))


def credits(
    policy: CreditPolicy,
    timeline: CaseTimeline,
    resolution: int = 1,
    is_bot: Callable[[str], bool] = default_is_bot,
) -> dict[Party, float]:
    """The shares of one resolution as party -> amount, for policies that only give credit."""
    shares = policy.shares(timeline, timeline.resolutions[resolution - 1], is_bot)
    assert {kind for _, kind in shares} <= {CREDIT}
    return {party: amount for (party, _), amount in shares.items()}


def approx(expected: Mapping[Any, float]) -> object:
    return pytest.approx(expected, abs=1e-12)


# --- histories ------------------------------------------------------------------------------------


def warm_escalation() -> CaseTimeline:
    """alice (L1) holds 09:00-10:00, escalates warm to bob (L2), who resolves at 12:00."""
    case = Case.open("INC-1", ALICE, Tier.L1, "", at(9))
    hand(case, BOB, at(10), Tier.L2)
    case.resolve("fixed", "", at(12))
    return timeline_of(case)


def consultant_and_observer() -> CaseTimeline:
    """alice holds 09:00-11:00; carol consults (L3) 09:30-11:00; dave only observes from 09:00."""
    case = Case.open("INC-2", ALICE, Tier.L1, "", at(9))
    case.join_swarm("dave", "mgmt", SwarmRole.OBSERVER, "", at(9))
    case.join_swarm("carol", "platform-l3", SwarmRole.CONSULTANT, "", at(9, 30))
    case.resolve("fixed", "", at(11))
    return timeline_of(case)


def ping_pong() -> CaseTimeline:
    """alice 09:00-10:00, bob 10:00-11:00, alice again 11:00-12:00 and resolves."""
    case = Case.open("INC-3", ALICE, Tier.L1, "", at(9))
    hand(case, BOB, at(10))
    hand(case, ALICE, at(11))
    case.resolve("fixed", "", at(12))
    return timeline_of(case)


def paused_across_the_handoff() -> CaseTimeline:
    """alice 09:00-10:00, bob 10:00-12:00; paused awaiting the customer 09:30-10:30."""
    case = Case.open("INC-4", ALICE, Tier.L1, "", at(9))
    case.pause(PauseReason.AWAITING_CUSTOMER, None, "", at(9, 30))
    hand(case, BOB, at(10))
    case.resume("", at(10, 30))
    case.resolve("fixed", "", at(12))
    return timeline_of(case)


def swarm_member_takes_over() -> CaseTimeline:
    """bob swarms 10:00-10:30 and takes the case over at 10:30; alice held it 09:00-10:30."""
    case = Case.open("INC-5", ALICE, Tier.L1, "", at(9))
    case.join_swarm("bob", "identity-l2", SwarmRole.CONTRIBUTOR, "", at(10))
    hand(case, BOB, at(10, 30))
    case.resolve("fixed", "", at(12))
    return timeline_of(case)


def late_handoff_overlapping_the_swarm() -> CaseTimeline:
    """bob swarms 10:00-11:00; a late-recorded handoff makes him owner from 10:30 (event time).

    So bob is both swarm member and owner 10:30-11:00; alice held it 09:00-10:30.
    """
    case = Case.open("INC-6", ALICE, Tier.L1, "", at(9))
    case.join_swarm("bob", "identity-l2", SwarmRole.CONTRIBUTOR, "", at(10))
    case.leave_swarm("bob", "", at(11))
    hand(case, BOB, at(10, 30))  # recorded after the leave, happened before it
    case.resolve("fixed", "", at(12))
    return timeline_of(case)


def resolved_reopened_resolved() -> CaseTimeline:
    """alice 09:00-10:00 resolves; reopened 11:00 (back to alice); bob 11:30-12:30 resolves."""
    case = Case.open("INC-7", ALICE, Tier.L1, "", at(9))
    case.resolve("fixed", "", at(10))
    case.reopen("still broken", "", at(11))
    hand(case, BOB, at(11, 30))
    case.resolve("fixed", "", at(12, 30))
    return timeline_of(case)


def with_bots_and_an_observer() -> CaseTimeline:
    """bot:triage opens 09:00, hands to alice 09:30; renovate[bot] contributes; dave observes;
    carol consults 10:00-11:00; alice resolves 11:00."""
    case = Case.open("INC-8", Owner("bot:triage", "service-desk"), Tier.L1, "", at(9))
    hand(case, ALICE, at(9, 30))
    case.join_swarm("renovate[bot]", "platform-l3", SwarmRole.CONTRIBUTOR, "", at(9, 45))
    case.join_swarm("dave", "mgmt", SwarmRole.OBSERVER, "", at(9, 45))
    case.join_swarm("carol", "platform-l3", SwarmRole.CONSULTANT, "", at(10))
    case.resolve("fixed", "", at(11))
    return timeline_of(case)


def resolved_by_a_bot() -> CaseTimeline:
    """alice 09:00-10:00, then auto-resolve-bot holds it 10:00-11:00 and resolves."""
    case = Case.open("INC-9", ALICE, Tier.L1, "", at(9))
    hand(case, Owner("auto-resolve-bot", "automation"), at(10))
    case.resolve("auto", "", at(11))
    return timeline_of(case)


def only_bots() -> CaseTimeline:
    case = Case.open("INC-10", Owner("bot:triage", "service-desk"), Tier.L1, "", at(9))
    case.join_swarm("dependabot[bot]", "platform-l3", SwarmRole.CONTRIBUTOR, "", at(9, 15))
    case.resolve("auto", "", at(9, 30))
    return timeline_of(case)


def queue_only() -> CaseTimeline:
    """The case sits in the network queue 09:00-10:00 and is resolved from the queue."""
    case = Case.open("INC-11", Owner(group_id="network"), None, "", at(9))
    case.resolve("fixed", "", at(10))
    return timeline_of(case)


def resolved_on_opening() -> CaseTimeline:
    case = Case.open("INC-12", ALICE, Tier.L1, "", at(9))
    case.resolve("duplicate", "", at(9))
    return timeline_of(case)


def all_histories() -> list[CaseTimeline]:
    return [
        warm_escalation(),
        consultant_and_observer(),
        ping_pong(),
        paused_across_the_handoff(),
        swarm_member_takes_over(),
        late_handoff_overlapping_the_swarm(),
        resolved_reopened_resolved(),
        with_bots_and_an_observer(),
        resolved_by_a_bot(),
        only_bots(),
        queue_only(),
        resolved_on_opening(),
    ]


# --- ResolverTakesAll -----------------------------------------------------------------------------


def test_resolver_takes_all_credits_the_l2_who_resolved_a_warm_escalation() -> None:
    assert credits(ResolverTakesAll(), warm_escalation()) == {B: 1.0}


def test_resolver_takes_all_credits_the_owner_back_after_ping_pong() -> None:
    assert credits(ResolverTakesAll(), ping_pong()) == {A: 1.0}


def test_resolver_takes_all_credits_the_group_queue_that_resolved_it() -> None:
    assert credits(ResolverTakesAll(), queue_only()) == {Party("", "network"): 1.0}


def test_resolver_takes_all_credits_nobody_when_a_bot_resolved() -> None:
    assert credits(ResolverTakesAll(), resolved_by_a_bot()) == {}


# --- FirstOwnerTakesAll ---------------------------------------------------------------------------


def test_first_owner_takes_all_credits_the_l1_who_took_the_contact() -> None:
    assert credits(FirstOwnerTakesAll(), warm_escalation()) == {A: 1.0}


def test_first_owner_takes_all_credits_every_resolution_to_the_first_owner() -> None:
    timeline = resolved_reopened_resolved()
    assert credits(FirstOwnerTakesAll(), timeline, 1) == {A: 1.0}
    assert credits(FirstOwnerTakesAll(), timeline, 2) == {A: 1.0}


def test_first_owner_takes_all_credits_nobody_when_a_bot_opened_the_case() -> None:
    assert credits(FirstOwnerTakesAll(), with_bots_and_an_observer()) == {}


# --- EqualSplit -----------------------------------------------------------------------------------


def test_equal_split_halves_a_warm_escalation() -> None:
    assert credits(EqualSplit(), warm_escalation()) == {A: 0.5, B: 0.5}


def test_equal_split_counts_a_consultant_but_not_an_observer() -> None:
    assert credits(EqualSplit(), consultant_and_observer()) == {A: 0.5, C: 0.5}


def test_equal_split_counts_a_person_once_however_often_they_held_the_case() -> None:
    assert credits(EqualSplit(), ping_pong()) == {A: 0.5, B: 0.5}


def test_equal_split_counts_an_owner_who_was_a_swarm_member_once() -> None:
    assert credits(EqualSplit(), swarm_member_takes_over()) == {A: 0.5, B: 0.5}


def test_equal_split_gives_a_queue_only_case_to_the_group() -> None:
    assert credits(EqualSplit(), queue_only()) == {Party("", "network"): 1.0}


def test_equal_split_counts_the_resolver_of_an_instant_resolution() -> None:
    assert credits(EqualSplit(), resolved_on_opening()) == {A: 1.0}


def test_equal_split_leaves_bots_out_of_the_split() -> None:
    assert credits(EqualSplit(), with_bots_and_an_observer()) == {A: 0.5, C: 0.5}
    assert credits(EqualSplit(), resolved_by_a_bot()) == {A: 1.0}


# --- OwnerBonus -----------------------------------------------------------------------------------


def test_owner_bonus_gives_the_resolver_the_bonus_and_the_others_the_rest() -> None:
    assert credits(OwnerBonus(0.8), warm_escalation()) == approx({B: 0.8, A: 0.2})


def test_owner_bonus_splits_the_rest_among_consultant_and_earlier_owners() -> None:
    case = Case.open("INC-20", ALICE, Tier.L1, "", at(9))
    case.join_swarm("carol", "platform-l3", SwarmRole.CONSULTANT, "", at(9, 30))
    case.join_swarm("dave", "mgmt", SwarmRole.OBSERVER, "", at(9, 30))
    hand(case, BOB, at(10), Tier.L2)
    case.resolve("fixed", "", at(11))
    assert credits(OwnerBonus(0.5), timeline_of(case)) == approx({B: 0.5, A: 0.25, C: 0.25})


def test_owner_bonus_gives_the_resolver_everything_when_nobody_else_helped() -> None:
    assert credits(OwnerBonus(0.5), resolved_on_opening()) == {A: 1.0}


def test_owner_bonus_ping_pong_resolver_is_not_also_an_other() -> None:
    assert credits(OwnerBonus(0.7), ping_pong()) == approx({A: 0.7, B: 0.3})


def test_owner_bonus_renormalises_when_the_resolver_is_a_bot() -> None:
    assert credits(OwnerBonus(0.5), resolved_by_a_bot()) == {A: 1.0}


def test_owner_bonus_name_carries_the_bonus_and_it_must_be_a_fraction() -> None:
    assert OwnerBonus(0.5).label == "OwnerBonus(0.5)@1"
    assert OwnerBonus(1).label == "OwnerBonus(1.0)@1"
    for bonus in (-0.1, 1.5):
        with pytest.raises(ValueError, match="within"):
            OwnerBonus(bonus)


# --- TimeWeighted ---------------------------------------------------------------------------------


def test_time_weighted_splits_a_warm_escalation_by_hours_held() -> None:
    # alice 1h, bob 2h
    assert credits(TimeWeighted(), warm_escalation()) == approx({A: 1 / 3, B: 2 / 3})


def test_time_weighted_counts_a_consultant_for_their_swarm_time() -> None:
    # alice 2h, carol 1.5h, dave observes
    assert credits(TimeWeighted(), consultant_and_observer()) == approx({A: 4 / 7, C: 3 / 7})


def test_time_weighted_adds_up_both_tenures_of_ping_pong() -> None:
    # alice 1h + 1h, bob 1h
    assert credits(TimeWeighted(), ping_pong()) == approx({A: 2 / 3, B: 1 / 3})


def test_time_weighted_leaves_out_paused_time() -> None:
    # alice 09:00-10:00 less 30m paused = 30m; bob 10:00-12:00 less 30m paused = 90m
    assert credits(TimeWeighted(), paused_across_the_handoff()) == approx({A: 0.25, B: 0.75})


def test_time_weighted_joins_swarm_time_and_ownership_of_the_same_person() -> None:
    # alice 09:00-10:30 = 1.5h; bob swarm 10:00-10:30 + owner 10:30-12:00 = 2h
    assert credits(TimeWeighted(), swarm_member_takes_over()) == approx({A: 3 / 7, B: 4 / 7})


def test_time_weighted_does_not_double_count_owning_while_in_the_swarm() -> None:
    timeline = late_handoff_overlapping_the_swarm()
    [bob_in_swarm] = timeline.swarm
    bob_owning = timeline.person_tenures[1]
    assert bob_owning.holder == "bob" and bob_in_swarm.span.overlap(
        bob_owning.span, DAY
    ) == timedelta(minutes=30)
    # bob: union of 10:00-11:00 (swarm) and 10:30-12:00 (owner) = 2h, not 2.5h; alice 1.5h
    assert credits(TimeWeighted(), timeline) == approx({A: 3 / 7, B: 4 / 7})


def test_time_weighted_falls_back_to_the_resolver_when_nobody_spent_any_time() -> None:
    assert credits(TimeWeighted(), resolved_on_opening()) == {A: 1.0}


def test_time_weighted_gives_a_queue_only_case_to_the_group() -> None:
    assert credits(TimeWeighted(), queue_only()) == {Party("", "network"): 1.0}


def test_time_weighted_leaves_bots_time_out() -> None:
    # alice 09:30-11:00 = 1.5h, carol 10:00-11:00 = 1h; the bots' and dave's time earn nothing
    assert credits(TimeWeighted(), with_bots_and_an_observer()) == approx({A: 0.6, C: 0.4})


# --- OverlayAssists -------------------------------------------------------------------------------


def test_overlay_assists_credits_the_resolver_and_gives_the_escalating_l1_an_assist() -> None:
    timeline = warm_escalation()
    shares = OverlayAssists().shares(timeline, timeline.resolutions[0])
    assert shares == {(A, ASSIST): 1.0, (B, CREDIT): 1.0}


def test_overlay_assists_gives_a_consultant_an_assist_and_an_observer_nothing() -> None:
    timeline = consultant_and_observer()
    shares = OverlayAssists().shares(timeline, timeline.resolutions[0])
    assert shares == {(A, CREDIT): 1.0, (C, ASSIST): 1.0}


def test_overlay_assists_does_not_give_the_resolver_an_assist_for_earlier_tenures() -> None:
    timeline = ping_pong()
    shares = OverlayAssists().shares(timeline, timeline.resolutions[0])
    assert shares == {(A, CREDIT): 1.0, (B, ASSIST): 1.0}


def test_overlay_assists_still_gives_humans_assists_when_a_bot_resolved() -> None:
    timeline = resolved_by_a_bot()
    shares = OverlayAssists().shares(timeline, timeline.resolutions[0])
    assert shares == {(A, ASSIST): 1.0}


# --- rules for every policy -----------------------------------------------------------------------


@pytest.mark.parametrize("label", sorted(POLICIES))
def test_bots_and_observers_receive_nothing_under_any_policy(label: str) -> None:
    policy = POLICIES[label]
    for timeline in (with_bots_and_an_observer(), resolved_by_a_bot(), consultant_and_observer()):
        for resolution in timeline.resolutions:
            parties = {party.agent_id for party, _ in policy.shares(timeline, resolution)}
            assert not {p for p in parties if default_is_bot(p)}
            assert "dave" not in parties


@pytest.mark.parametrize("label", sorted(POLICIES))
def test_a_case_worked_only_by_bots_credits_nobody(label: str) -> None:
    timeline = only_bots()
    assert POLICIES[label].shares(timeline, timeline.resolutions[0]) == {}


def test_the_caller_decides_who_is_a_bot() -> None:
    timeline = warm_escalation()
    assert credits(EqualSplit(), timeline, is_bot=lambda agent: agent == "bob") == {A: 1.0}


def test_default_bot_recognition() -> None:
    assert [default_is_bot(a) for a in ("bot:x", "renovate[bot]", "triage-bot", "", "abbot")] == [
        True,
        True,
        True,
        False,
        False,
    ]


@pytest.mark.parametrize("label", [name for name in sorted(POLICIES) if POLICIES[name].sums_to_one])
def test_shares_of_sum_to_one_policies_sum_to_one_unless_nobody_is_credited(label: str) -> None:
    for timeline in all_histories():
        for resolution in timeline.resolutions:
            total = sum(POLICIES[label].shares(timeline, resolution).values())
            assert total == pytest.approx(1.0) or total == 0.0


def test_a_resolution_is_credited_from_what_had_happened_by_then() -> None:
    timeline = resolved_reopened_resolved()  # bob only arrives after the first resolution
    for policy in POLICIES.values():
        first = policy.shares(timeline, timeline.resolutions[0])
        assert {party for party, _ in first} == {A}


def test_a_person_is_credited_in_the_group_they_last_held_the_case_in() -> None:
    case = Case.open("INC-21", ALICE, Tier.L1, "", at(9))
    case.join_swarm("carol", "security", SwarmRole.CONTRIBUTOR, "", at(9))
    hand(case, Owner("carol", "platform-l3"), at(10))
    hand(case, BOB, at(11))
    case.resolve("fixed", "", at(12))
    assert credits(EqualSplit(), timeline_of(case)) == approx({A: 1 / 3, B: 1 / 3, C: 1 / 3})


# --- entries, reversals and labels ----------------------------------------------------------------


def test_resolve_reopen_resolve_gives_credit_reversal_credit() -> None:
    timeline = resolved_reopened_resolved()
    entries = credit_entries(timeline, [ResolverTakesAll()])
    assert [(e.resolution_seq, e.party, e.kind, e.amount, e.at) for e in entries] == [
        (1, A, CREDIT, 1.0, DAY.replace(hour=10)),
        (1, A, REVERSAL, -1.0, DAY.replace(hour=11)),
        (2, B, CREDIT, 1.0, DAY.replace(hour=12, minute=30)),
    ]
    assert net_totals(entries) == {("ResolverTakesAll@1", A): 0.0, ("ResolverTakesAll@1", B): 1.0}


def test_the_resolution_after_a_reopening_credits_the_whole_history_afresh() -> None:
    timeline = resolved_reopened_resolved()
    entries = credit_entries(timeline, [TimeWeighted(), OverlayAssists()])
    assert [(e.label, e.resolution_seq, e.party, e.kind, e.amount) for e in entries] == [
        ("OverlayAssists@1", 1, A, CREDIT, 1.0),
        ("OverlayAssists@1", 1, A, REVERSAL, -1.0),
        ("TimeWeighted@1", 1, A, CREDIT, 1.0),
        ("TimeWeighted@1", 1, A, REVERSAL, -1.0),
        ("OverlayAssists@1", 2, A, ASSIST, 1.0),
        ("OverlayAssists@1", 2, B, CREDIT, 1.0),
        # alice 09:00-10:00 + 11:00-11:30 = 1.5h, bob 11:30-12:30 = 1h
        ("TimeWeighted@1", 2, A, CREDIT, pytest.approx(0.6)),
        ("TimeWeighted@1", 2, B, CREDIT, pytest.approx(0.4)),
    ]
    assert net_totals(entries) == approx(
        {
            ("OverlayAssists@1", A): 1.0,
            ("OverlayAssists@1", B): 1.0,
            ("TimeWeighted@1", A): 0.6,
            ("TimeWeighted@1", B): 0.4,
        }
    )


def test_an_undone_resolution_nets_to_zero_under_every_policy() -> None:
    case = Case.open("INC-22", ALICE, Tier.L1, "", at(9))
    case.join_swarm("carol", "platform-l3", SwarmRole.CONSULTANT, "", at(9, 30))
    hand(case, BOB, at(10))
    case.resolve("fixed", "", at(11))
    case.reopen("still broken", "", at(13))
    entries = credit_entries(timeline_of(case), POLICIES.values())
    assert {e.kind for e in entries} == {CREDIT, ASSIST, REVERSAL}
    assert all(e.at == DAY.replace(hour=13) for e in entries if e.kind == REVERSAL)
    assert set(net_totals(entries).values()) == {0.0}


def test_a_reversal_is_never_dated_before_the_resolution_it_undoes() -> None:
    case = Case.open("INC-23", ALICE, Tier.L1, "", at(9))
    case.resolve("fixed", "", at(10))
    case.reopen("still broken", "", at(9, 59))  # a skewed clock stamps the reopening early
    entries = credit_entries(timeline_of(case), [ResolverTakesAll()])
    assert [(e.kind, e.amount, e.at) for e in entries] == [
        (CREDIT, 1.0, DAY.replace(hour=10)),
        (REVERSAL, -1.0, DAY.replace(hour=10)),
    ]


def test_entries_come_in_a_deterministic_order() -> None:
    timeline = resolved_reopened_resolved()
    forwards = credit_entries(timeline, list(POLICIES.values()))
    backwards = credit_entries(timeline, list(POLICIES.values())[::-1])
    assert forwards == backwards
    keys = [(e.resolution_seq, e.label, e.kind == REVERSAL, e.party) for e in forwards]
    assert keys == sorted(keys)


def test_a_policy_listed_twice_counts_once() -> None:
    timeline = warm_escalation()
    assert credit_entries(timeline, [EqualSplit(), EqualSplit()]) == credit_entries(
        timeline, [EqualSplit()]
    )


def test_every_entry_carries_its_policy_at_version() -> None:
    entries = credit_entries(resolved_reopened_resolved(), POLICIES.values())
    assert {e.label for e in entries} == set(POLICIES)
    for entry in entries:
        assert isinstance(entry, CreditEntry)
        assert entry.label == f"{entry.policy}@{entry.policy_version}"
        assert entry.case_id == "INC-7"


def test_the_registry_is_keyed_by_label_and_holds_every_policy() -> None:
    assert sorted(POLICIES) == [
        "EqualSplit@1",
        "FirstOwnerTakesAll@1",
        "OverlayAssists@1",
        "OwnerBonus(0.5)@1",
        "ResolverTakesAll@1",
        "TimeWeighted@1",
    ]
    assert all(policy.label == label for label, policy in POLICIES.items())


def test_a_policy_is_found_by_label_or_by_name() -> None:
    assert resolve_policy("EqualSplit") is POLICIES["EqualSplit@1"]
    assert resolve_policy("EqualSplit@1") is POLICIES["EqualSplit@1"]
    assert resolve_policy("OwnerBonus") is POLICIES["OwnerBonus(0.5)@1"]
    assert resolve_policy("OwnerBonus@1") is POLICIES["OwnerBonus(0.5)@1"]
    assert resolve_policy("OwnerBonus(0.8)@1").label == "OwnerBonus(0.8)@1"


@pytest.mark.parametrize(
    "asked", ["EqualSplits", "EqualSplit@2", "EqualSplit@", "OwnerBonus(1.5)", "OwnerBonus(0.5)@2"]
)
def test_an_unknown_policy_is_refused_with_the_known_labels(asked: str) -> None:
    with pytest.raises(UnknownPolicy) as caught:
        resolve_policy(asked)
    message = str(caught.value)
    assert repr(asked) in message
    for label in POLICIES:
        assert label in message
    assert isinstance(caught.value, KeyError) and isinstance(caught.value, ValueError)

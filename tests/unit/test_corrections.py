"""Corrections are compensating events: rules in the domain, applied by readers, never edits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.ledger.domain.case import Case, Provenance
from services.ledger.domain.errors import Rule, RuleViolated
from services.ledger.domain.values import Owner, Tier, TransferReason
from services.projector.corrections import as_corrected
from services.projector.timeline import derive

NINE = datetime(2026, 2, 2, 9, 0, tzinfo=UTC)
ALICE, BOB = Owner("alice", "desk"), Owner("bob", "l2")


def at(minutes: int, command_id: str = "c") -> Provenance:
    return Provenance(NINE + timedelta(minutes=minutes), "auditor", command_id)


def handed_over() -> Case:
    """Alice from 9:00, Bob from (as first recorded) 10:00."""
    case = Case.open("INC-9", ALICE, Tier.L1, "", at(0, "open"))
    case.transfer(BOB, TransferReason.ESCALATION, Tier.L2, "", None, False, at(60, "t"))
    return case


def test_a_correction_references_the_event_and_the_time_it_replaces() -> None:
    case = handed_over()
    original = case.pending_events[1]
    assert case.correct_occurrence(2, NINE + timedelta(minutes=30), "clock", "", at(120, "fix"))
    correction = case.pending_events[-1]
    assert isinstance(correction, Case.OccurrenceCorrected)
    assert (correction.corrects_version, correction.originator_version) == (2, 3)
    assert correction.original_occurred_at == original.occurred_at == NINE + timedelta(minutes=60)
    assert correction.corrected_occurred_at == NINE + timedelta(minutes=30)
    assert original.occurred_at == NINE + timedelta(minutes=60), "the original is never edited"
    assert case.owner == BOB, "a time correction moves no ownership"

    # A second correction names the time the first put in force.
    case.correct_occurrence(2, NINE + timedelta(minutes=40), "again", "", at(130, "fix2"))
    second = case.pending_events[-1]
    assert isinstance(second, Case.OccurrenceCorrected)
    assert second.original_occurred_at == NINE + timedelta(minutes=30)


def test_a_correction_to_the_time_in_force_records_nothing() -> None:
    case = handed_over()
    assert not case.correct_occurrence(2, NINE + timedelta(minutes=60), "same", "", at(90))
    assert len(case.pending_events) == 2


@pytest.mark.parametrize("version", [0, 3, -1])
def test_only_an_existing_version_can_be_corrected(version: int) -> None:
    case = handed_over()
    with pytest.raises(RuleViolated) as refused:
        case.correct_occurrence(version, NINE, "x", "", at(90))
    assert refused.value.rule is Rule.CORRECTED_EVENT_NOT_FOUND
    assert len(case.pending_events) == 2


def test_a_correction_is_not_itself_corrected_but_a_resolved_case_can_be() -> None:
    case = handed_over()
    case.resolve("done", "", at(200, "r"))
    assert case.correct_occurrence(1, NINE - timedelta(minutes=5), "late ticket", "", at(210))
    correction_version = case.version
    with pytest.raises(RuleViolated) as refused:
        case.correct_occurrence(correction_version, NINE, "x", "", at(220))
    assert refused.value.rule is Rule.CORRECTION_OF_A_CORRECTION


def test_read_models_follow_the_corrected_time_and_the_stored_events_stay_as_they_were() -> None:
    case = handed_over()
    case.correct_occurrence(2, NINE + timedelta(minutes=30), "clock", "", at(120, "fix"))
    events = list(case.pending_events)

    as_recorded = derive("INC-9", events[:2])
    corrected = derive("INC-9", as_corrected(events))
    alice_recorded = as_recorded.person_tenures[0]
    alice_corrected = corrected.person_tenures[0]
    assert alice_recorded.span.end == NINE + timedelta(minutes=60)
    assert alice_corrected.span.end == NINE + timedelta(minutes=30)
    assert corrected.person_tenures[1].span.start == NINE + timedelta(minutes=30)
    assert events[1].occurred_at == NINE + timedelta(minutes=60)
    assert as_corrected(events[:2]) == events[:2]

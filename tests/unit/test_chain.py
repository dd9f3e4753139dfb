"""The canonical byte form and the per-case hash chain, computed in the domain as events are made."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from functools import reduce

import pytest
from eventsourcing.persistence import StoredEvent

from services.audit.chain import record_from_row
from services.ledger.domain.case import Case, Provenance
from services.ledger.domain.chain import GENESIS, canonical_document, event_fields, link_hash
from services.ledger.domain.values import Owner, Tier, TransferReason
from services.ledger.infrastructure.store import LedgerApplication

AT = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def _provenance(step: int) -> Provenance:
    return Provenance(occurred_at=AT + timedelta(minutes=step), actor="desk", command_id=f"c{step}")


def _case() -> Case:
    case = Case.open("INC-1", Owner("alice", "desk"), Tier.L1, "", _provenance(0))
    case.transfer(
        Owner("bob", "l2"), TransferReason.ESCALATION, Tier.L2, "warm", None, True, _provenance(1)
    )
    return case


def test_the_canonical_document_is_sorted_compact_utf8_with_microsecond_utc_times() -> None:
    fields = event_fields(
        {
            "originator_id": "INC-1",
            "originator_version": 2,
            "chain_hash": "ignored",
            "to_owner": Owner("bob", "l2"),
            "reason": TransferReason.ESCALATION,
            "occurred_at": datetime(2026, 3, 1, 10, 30, tzinfo=timezone(timedelta(hours=1))),
            "note": "café",
            "warm": True,
            "eta": None,
        }
    )
    document = canonical_document("INC-1", 2, "m:Case.Transferred", 2, fields, GENESIS)
    assert document == (
        '{"case_id":"INC-1","class_version":2,"fields":{"eta":null,"note":"café",'
        '"occurred_at":"2026-03-01T09:30:00.000000Z","reason":"escalation","to_owner":'
        '{"agent_id":"bob","group_id":"l2"},"warm":true},"previous_hash":"' + GENESIS + '",'
        '"topic":"m:Case.Transferred","version":2}'
    ).encode("utf-8")


def test_floats_and_naive_times_have_no_canonical_form() -> None:
    with pytest.raises(TypeError):
        event_fields({"share": 0.5})
    with pytest.raises(ValueError, match="naive"):
        event_fields({"at": datetime(2026, 1, 1)})


def test_each_event_is_sealed_to_the_one_before_and_the_case_remembers_the_last() -> None:
    case = _case()
    first, second = case.pending_events
    assert first.chain_hash == link_hash(
        "INC-1",
        1,
        "services.ledger.domain.case:Case.Assigned",
        Case.Event.class_version,
        event_fields(vars(first)),
        GENESIS,
    )
    assert second.chain_hash == link_hash(
        "INC-1",
        2,
        "services.ledger.domain.case:Case.Transferred",
        Case.Event.class_version,
        event_fields(vars(second)),
        first.chain_hash,
    )
    assert case.chain_hash == second.chain_hash
    rebuilt = reduce(lambda agg, e: e.mutate(agg), case.pending_events, None)
    assert rebuilt is not None and rebuilt.chain_hash == second.chain_hash


def test_the_stored_form_hashes_to_the_same_value_as_the_domain_event() -> None:
    app = LedgerApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    previous = GENESIS
    for event in _case().pending_events:
        stored = app.mapper.to_stored_event(event)
        record = record_from_row(
            9, stored.originator_id, stored.originator_version, stored.topic, stored.state
        )
        assert record.chain_hash == event.chain_hash
        assert record.computed_hash(previous) == event.chain_hash
        previous = event.chain_hash


def test_a_version_1_event_stored_before_the_chain_still_loads() -> None:
    app = LedgerApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    stored = app.mapper.to_stored_event(_case().pending_events[0])
    state = json.loads(stored.state)
    del state["chain_hash"], state["class_version"]
    old = StoredEvent(stored.originator_id, 1, stored.topic, json.dumps(state).encode())
    event = app.mapper.to_domain_event(old)
    assert isinstance(event, Case.Assigned)
    assert event.chain_hash == ""
    loaded = event.mutate(None)
    assert loaded is not None and loaded.owner == Owner("alice", "desk")

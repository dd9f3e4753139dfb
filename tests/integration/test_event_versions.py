"""Events stored by an earlier release still load: each class_version step has its upcast."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from eventsourcing.persistence import StoredEvent

from services.ledger.domain.case import Case, Provenance
from services.ledger.domain.values import Owner, Tier, TransferReason
from services.ledger.infrastructure.store import EventsourcingStore

WHEN = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)
TRACE = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
def store(database_url: str) -> Iterator[EventsourcingStore]:
    opened = EventsourcingStore(database_url, pool_size=2, cache_size=0)
    yield opened
    opened.close()


def as_stored_by(version: int, store: EventsourcingStore, event: Case.Event) -> StoredEvent:
    """``event`` as an earlier release stored it: version 1 had neither hash chain nor trace
    context, version 2 a hash chain but no trace context."""
    stored = store.app.mapper.to_stored_event(event)
    state = store.app.mapper.transcoder.decode(stored.state)
    del state["class_version"], state["trace_parent"]
    if version == 1:
        del state["chain_hash"]
    else:
        state["class_version"] = version
    return replace(stored, state=store.app.mapper.transcoder.encode(state))


@pytest.mark.parametrize("version", [1, 2])
def test_earlier_events_load_without_a_trace_context(
    store: EventsourcingStore, version: int
) -> None:
    case = Case.open("OLD-1", Owner("alice", "desk"), Tier.L1, "", Provenance(WHEN, "t", "o/1"))
    case.transfer(
        Owner("bob", "l2"), TransferReason.ESCALATION, None, "", None, True,
        Provenance(WHEN, "t", "o/2"),
    )  # fmt: skip
    stored = [as_stored_by(version, store, e) for e in case.collect_events()]
    store.recorder.insert_events(stored)

    loaded = store.read_case("OLD-1", 0, 10)
    assert [type(r.event) for r in loaded] == [Case.Assigned, Case.Transferred]
    assert [r.event.trace_parent for r in loaded] == [None, None]
    assert [bool(r.event.chain_hash) for r in loaded] == [version == 2] * 2
    transferred = loaded[1].event
    assert isinstance(transferred, Case.Transferred) and transferred.to_owner == Owner("bob", "l2")

    # The case built from them takes new commands, whose events carry their trace context.
    current = store.load_case("OLD-1")
    assert current is not None and current.owner == Owner("bob", "l2")
    current.transfer(
        Owner("carol", "l3"), TransferReason.ESCALATION, None, "", None, False,
        Provenance(WHEN, "t", "o/3", trace_parent=TRACE),
    )  # fmt: skip
    store.recorder.insert_events(
        [store.app.mapper.to_stored_event(e) for e in current.collect_events()]
    )
    assert store.read_case("OLD-1", 2, 10)[0].event.trace_parent == TRACE

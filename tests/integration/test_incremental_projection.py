"""The projector's incremental path equals a clean whole-case derive, on randomized histories.

The projector applies each event to a case's in-memory state and writes only the rows that
changed; it re-derives a case whole only when a late event arrives. These tests hold it to the
reference: ``readmodels.case_rows``, every case derived whole from all of its events. Histories
are random case stories with late and clock-skewed events (about one event in twelve claims to
have happened before the one written before it) and corrections of earlier events' times,
projected in random batch sizes, with restarts (nothing in memory: rows are replaced whole) and
a cache so small that cases keep leaving it.
"""

from __future__ import annotations

import gc
import random
from collections import defaultdict
from datetime import timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from services.bootstrap import build_store
from services.ledger.application import commands as c
from services.ledger.domain.case import Case
from services.ledger.infrastructure.store import EventsourcingStore
from services.projector import casefacts
from services.projector import readmodels as rm
from services.projector.casestate import CaseState
from services.projector.credit import POLICIES, chosen_policies
from services.projector.database import PIPELINE_ROWS, ReadModelDatabase
from services.projector.projector import TRACKING_NAME, Projector
from services.settings import Settings
from tests.integration.test_projector_crash import (
    RM_TABLES,
    _readmodel_urls,
    assert_same_contents,
    fill,
    snapshot,
    story_commands,
)

POLICY_LIST = list(POLICIES.values())


def histories(store: EventsourcingStore) -> tuple[dict[str, list[Case.Event]], dict[str, int]]:
    """Every case's events in version order, and the position of each case's last event."""
    events: dict[str, list[Case.Event]] = defaultdict(list)
    last: dict[str, int] = {}
    position = 0
    while batch := store.read_all(position, 1000):
        for recorded in batch:
            events[recorded.event.originator_id].append(recorded.event)
            last[recorded.event.originator_id] = recorded.position
        position = batch[-1].position
    return events, last


def whole_case_rows(
    events: dict[str, list[Case.Event]], last: dict[str, int]
) -> dict[str, list[tuple[Any, ...]]]:
    """The reference: every case derived whole from all of its events, as sorted table rows."""
    expected: dict[str, list[tuple[Any, ...]]] = {name: [] for name in RM_TABLES}
    for case_id, case_events in events.items():
        rows = rm.case_rows(case_id, case_events, last[case_id], POLICY_LIST).rows
        for name, table_rows in rows.items():
            expected[name].extend(table_rows)
    expected["tracking"] = [(TRACKING_NAME, max(last.values()))]
    return {name: sorted(rows, key=repr) for name, rows in expected.items()}


def corrections(store: EventsourcingStore, rng: random.Random, count: int) -> list[c.Command]:
    """Corrections of the times of ``count`` random earlier events (never of a correction)."""
    events, _ = histories(store)
    commands: list[c.Command] = []
    for n, case_id in enumerate(rng.sample(sorted(events), min(count, len(events)))):
        history = events[case_id]
        target = rng.choice([e for e in history if not isinstance(e, Case.OccurrenceCorrected)])
        commands.append(
            c.CorrectOccurrence(
                case_id=case_id,
                command_id=f"{case_id}/correction-{len(history)}-{n}",
                actor="auditor",
                occurred_at=max(e.occurred_at for e in history) + timedelta(minutes=1),
                corrects_version=target.originator_version,
                corrected_occurred_at=target.occurred_at
                + timedelta(minutes=rng.choice([-1, 1]) * rng.randint(1, 180)),
                reason="clock",
            )
        )
    return commands


def late_events(events: dict[str, list[Case.Event]]) -> int:
    """How many events claim to have happened before an event written earlier for their case."""
    late = 0
    for case_events in events.values():
        latest = case_events[0].occurred_at
        for event in case_events[1:]:
            late += event.occurred_at < latest
            latest = max(latest, event.occurred_at)
    return late


def count_corrections(events: dict[str, list[Case.Event]]) -> int:
    return sum(isinstance(e, Case.OccurrenceCorrected) for h in events.values() for e in h)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_case_state_applied_event_by_event_equals_a_whole_case_derive(
    sqlite_url: str, seed: int
) -> None:
    """In memory, no database: random splits into batches, rows compared after every batch."""
    store = build_store(Settings(database_url=sqlite_url))
    try:
        fill(store, story_commands(40, per_case=14, seed=seed))
        fill(store, corrections(store, random.Random(seed), 15))
        events, _ = histories(store)
    finally:
        store.close()
    assert late_events(events) >= 10, "the histories must hold late and skewed events"
    assert count_corrections(events) >= 10
    late_counters = [
        e
        for h in events.values()
        for before, e in pairwise(h)
        if e.occurred_at < before.occurred_at and casefacts.reassignment_count(e) is not None
    ]
    assert late_counters, "no late event carries the source system's counter"
    rng = random.Random(seed)
    chosen = chosen_policies(POLICY_LIST)
    for case_id, case_events in events.items():
        state = CaseState.opening(case_id)
        applied = 0
        while applied < len(case_events):
            step = rng.randint(1, 4)
            for event in case_events[applied : applied + step]:
                applied += 1
                state.apply(event, position=applied)
            expected = rm.case_rows(case_id, case_events[:applied], applied, POLICY_LIST).rows
            assert state.rows(chosen) == expected, f"{case_id} after {applied} events"


@pytest.mark.parametrize("seed", [11, 12])
def test_incremental_projection_equals_a_whole_case_derive(
    database_url: str, tmp_path: Path, seed: int
) -> None:
    """Through the database: random batch sizes, restarts and evictions; every table compared."""
    rng = random.Random(seed)
    commands = story_commands(50, per_case=12, seed=seed)
    readmodel_url, _ = _readmodel_urls(database_url, tmp_path)
    store = build_store(Settings(database_url=database_url))
    database = ReadModelDatabase(readmodel_url)
    try:
        projector = Projector(store, database, POLICY_LIST, batch_size=rng.randint(3, 40))
        written = 0
        while written < len(commands):
            chunk = rng.randint(10, 120)
            fill(store, commands[written : written + chunk])
            written += chunk
            if rng.random() < 0.3:
                fill(store, corrections(store, rng, rng.randint(1, 4)))
            if rng.random() < 0.25:  # a restart: nothing in memory, position from the tracking row
                projector = Projector(
                    store,
                    database,
                    POLICY_LIST,
                    batch_size=rng.randint(3, 40),
                    cache_cases=rng.choice([2, 5, 5_000]),
                )
            projector.catch_up(stop_at=projector.position + rng.randint(1, 200))
        projector.catch_up()
        events, last = histories(store)
        assert projector.position == max(last.values())
        projected = snapshot(database)
    finally:
        database.close()
        store.close()
    assert late_events(events) >= 10, "the histories must hold late and skewed events"
    assert count_corrections(events) >= 3
    assert any(row[5] for row in projected["pause"]), "no clock-skewed pause was clamped"
    assert any(row[4] is not None for row in projected["case_facts"]), "no source counter"
    assert_same_contents(projected, whole_case_rows(events, last))


def test_projected_cases_are_freed_by_reference_counting(sqlite_url: str, tmp_path: Path) -> None:
    """``gcpacing.FrozenLongLived`` freezes the case states, which is only safe while they hold
    no reference cycles: the cyclic collector never sees them again, reference counting must free
    them when they leave the cache."""
    store = build_store(Settings(database_url=sqlite_url))
    database = ReadModelDatabase(f"sqlite:///{tmp_path}/cycles.sqlite")
    try:
        fill(store, story_commands(30, per_case=14, seed=5))
        fill(store, corrections(store, random.Random(5), 10))  # late events re-derive cases
        projector = Projector(store, database, POLICY_LIST, batch_size=17, cache_cases=4)
        gc.collect()
        gc.disable()
        gc.set_debug(gc.DEBUG_SAVEALL)  # unreachable cycles go to gc.garbage, not away
        try:
            projected = projector.catch_up()
            del projector
            gc.collect()
            cyclic = sorted({type(o).__qualname__ for o in gc.garbage})
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
            gc.enable()
    finally:
        database.close()
        store.close()
    assert projected > 300
    assert not cyclic, f"projecting left reference cycles of {cyclic}"


@pytest.mark.parametrize("rows", [3, PIPELINE_ROWS + 1])  # one JSON statement, or COPY
def test_written_rows_read_back_exactly(postgres_url: str, rows: int) -> None:
    """Both PostgreSQL write paths keep every value as it was: text with quotes, backslashes,
    newlines and non-ASCII, NULLs, and doubles that no short decimal writes exactly."""
    database = ReadModelDatabase(postgres_url)
    credit = [
        (f"CASE-é-{n}", 'Pol"icy\\\n', 1, "agent-😀", "grp", 1 / 3 + n, "credit", 2, -5 - n)
        for n in range(rows)
    ]
    tenure = [("CASE-1", "person", n, "h", "g", None, 10, None, 1, 2, 3) for n in range(rows)]
    try:
        with database.transaction(write=True) as cursor:
            rm.create_tables(cursor)
            cursor.upsert_rows(rm.table("credit"), rm.SHAPES["credit"], credit, stored=0)
            cursor.upsert_rows(rm.table("tenure"), rm.SHAPES["tenure"], tenure, stored=0)
        with database.transaction() as cursor:
            cursor.execute(f"SELECT * FROM {rm.table('credit')} ORDER BY at_us DESC")
            stored_credit = [tuple(row) for row in cursor.fetchall()]
            cursor.execute(f"SELECT * FROM {rm.table('tenure')} ORDER BY seq")
            stored_tenure = [tuple(row) for row in cursor.fetchall()]
    finally:
        database.close()
    assert stored_credit == credit
    assert stored_tenure == tenure

"""One abstract suite for the event store, run against every store: SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest
from psycopg import sql

from services.ledger.application import commands as c
from services.ledger.application.handler import CaseCommandHandler
from services.ledger.application.ports import AppendConflict, CommandRecord
from services.ledger.application.validation import Limits
from services.ledger.domain.case import Case, Provenance
from services.ledger.domain.errors import Rule, RuleViolated
from services.ledger.domain.values import Owner, PauseReason, SwarmRole, Tier, TransferReason
from services.ledger.infrastructure.postgres_url import parse_postgres_url
from services.ledger.infrastructure.recorders import COPY_THRESHOLD
from services.ledger.infrastructure.store import EventsourcingStore

WHEN = datetime(2026, 3, 1, 8, 30, 15, 123456, tzinfo=UTC)
ALICE = Owner("alice", "desk")
BOB = Owner("bob", "l2")


def record(case: Case, command_id: str, before: int) -> CommandRecord:
    return CommandRecord(command_id, case.id, "Test", "fp-" + command_id, before, case.version)


def append(
    store: EventsourcingStore, case: Case | None, records: list[CommandRecord]
) -> dict[tuple[str, int], int]:
    """Store one case's pending events with ``records``, as the handler does."""
    events = list(case.pending_events) if case is not None else []
    return store.append(events, [case] if case is not None else [], records)


def by(command_id: str) -> Provenance:
    return Provenance(WHEN, "tester", command_id)


class EventStoreSuite:
    """Behaviours every store must have. Subclasses say which database backs the store."""

    @pytest.fixture
    def url(self) -> str:
        raise NotImplementedError

    @pytest.fixture
    def store(self, url: str) -> Iterator[EventsourcingStore]:
        store = EventsourcingStore(url, pool_size=4)
        yield store
        store.close()

    def test_appended_events_come_back_with_positions_in_global_order(
        self, store: EventsourcingStore
    ) -> None:
        case = Case.open("A", ALICE, Tier.L1, "n", by("1"))
        case.transfer(BOB, TransferReason.ESCALATION, Tier.L2, "", WHEN, True, by("1"))
        positions = append(store, case, [record(case, "1", 0)])
        other = Case.open("B", BOB, None, "", by("2"))
        positions |= append(store, other, [record(other, "2", 0)])
        assert positions == {("A", 1): 1, ("A", 2): 2, ("B", 1): 3}
        assert [(r.position, r.event.originator_id) for r in store.read_all(0, 10)] == [
            (1, "A"),
            (2, "A"),
            (3, "B"),
        ]
        assert [r.position for r in store.read_all(1, 10)] == [2, 3]
        assert [r.position for r in store.read_case("A", 1, 10)] == [2]
        assert store.max_position() == 3

    def test_every_event_kind_survives_the_round_trip_exactly(
        self, store: EventsourcingStore
    ) -> None:
        case = Case.open("R", ALICE, Tier.L1, "ünïcode ✓ note\nline", by("r"))
        case.join_swarm("carol", "l3", SwarmRole.CONSULTANT, "help", by("r"))
        case.transfer(BOB, TransferReason.SHIFT_HANDOVER, None, "", None, False, by("r"))
        case.pause(PauseReason.SCHEDULED, WHEN, "later", by("r"))
        case.resume("", by("r"))
        case.resolve("fixed", "", by("r"))
        case.reopen("again", "", by("r"))
        originals = list(case.pending_events)
        append(store, case, [record(case, "r", 0)])
        loaded = [r.event for r in store.read_case("R", 0, 100)]
        assert [vars(e) for e in loaded] == [vars(e) for e in originals]
        assert [type(e) for e in loaded] == [type(e) for e in originals]

    def test_a_loaded_case_has_the_state_its_history_gives(self, store: EventsourcingStore) -> None:
        case = Case.open("S", ALICE, Tier.L1, "", by("s"))
        case.join_swarm("carol", "l3", SwarmRole.OBSERVER, "", by("s"))
        case.pause(PauseReason.AWAITING_CUSTOMER, None, "", by("s"))
        append(store, case, [record(case, "s", 0)])
        loaded = store.load_case("S")
        assert loaded is not None
        assert (loaded.version, loaded.owner, loaded.pause_reason, set(loaded.swarm)) == (
            3,
            ALICE,
            PauseReason.AWAITING_CUSTOMER,
            {"carol"},
        )
        assert store.load_case("missing") is None

    def test_a_taken_version_is_a_conflict_and_stores_nothing(
        self, store: EventsourcingStore
    ) -> None:
        append(store, Case.open("C", ALICE, None, "", by("c1")), [])
        first = store.load_case("C")
        second = store.load_case("C")
        assert first is not None and second is not None
        first.transfer(BOB, TransferReason.OTHER, None, "", None, False, by("c2"))
        append(store, first, [record(first, "c2", 1)])
        second.pause(PauseReason.SCHEDULED, None, "", by("c3"))
        with pytest.raises(AppendConflict):
            append(store, second, [record(second, "c3", 1)])
        assert store.max_position() == 2
        assert store.find_commands(["c3"]) == {}
        third = store.load_case("C")
        assert third is not None
        third.pause(PauseReason.SCHEDULED, None, "", by("c4"))
        assert append(store, third, [record(third, "c4", 2)]) == {("C", 3): 3}  # no hole

    def test_a_large_append_that_lost_a_race_on_one_case_is_refused_whole(
        self, store: EventsourcingStore
    ) -> None:
        # From COPY_THRESHOLD events on, appends check versions with their own statement.
        append(store, Case.open("C", ALICE, None, "", by("c1")), [])
        stale = store.load_case("C")
        moved = store.load_case("C")
        assert stale is not None and moved is not None
        moved.transfer(BOB, TransferReason.OTHER, None, "", None, False, by("c2"))
        append(store, moved, [])
        fresh = [Case.open(f"N{i}", ALICE, None, "", by(f"n{i}")) for i in range(COPY_THRESHOLD)]
        fresh_events = [case.pending_events[0] for case in fresh]
        stale.pause(PauseReason.SCHEDULED, None, "", by("c3"))
        again = Case.open("C", BOB, None, "", by("c-again"))  # C's version 1 once more
        for late in (stale, again):
            with pytest.raises(AppendConflict):
                store.append([*fresh_events, *late.pending_events], [*fresh, late], [])
            assert store.max_position() == 2
        current = store.load_case("C")
        assert current is not None
        current.pause(PauseReason.SCHEDULED, None, "", by("c4"))
        positions = store.append([*fresh_events, *current.pending_events], [*fresh, current], [])
        assert sorted(positions.values()) == list(range(3, 3 + COPY_THRESHOLD + 1))

    def test_a_used_command_id_is_a_conflict_and_its_events_are_not_stored(
        self, store: EventsourcingStore
    ) -> None:
        one = Case.open("D1", ALICE, None, "", by("dup"))
        append(store, one, [record(one, "dup", 0)])
        two = Case.open("D2", ALICE, None, "", by("dup"))
        with pytest.raises(AppendConflict):
            append(store, two, [record(two, "dup", 0)])
        assert store.load_case("D2") is None and store.max_position() == 1

    def test_command_records_are_durable_and_point_at_their_last_event(
        self, url: str, store: EventsourcingStore
    ) -> None:
        case = Case.open("E", ALICE, None, "", by("e1"))
        case.transfer(BOB, TransferReason.OTHER, None, "", None, False, by("e1"))
        append(store, case, [record(case, "e1", 0)])
        store.close()
        reopened = EventsourcingStore(url, pool_size=2)
        try:
            found = reopened.find_commands(["e1", "nope"])
            assert set(found) == {"e1"}
            assert found["e1"].position == 2 and found["e1"].record.events_recorded == 2
        finally:
            reopened.close()

    def test_a_record_without_events_is_stored_for_a_no_op(self, store: EventsourcingStore) -> None:
        case = Case.open("F", ALICE, None, "", by("f1"))
        append(store, case, [record(case, "f1", 0)])
        append(store, None, [CommandRecord("f2", "F", "Transfer", "fp", 1, 1)])
        found = store.find_commands(["f2"])["f2"]
        assert found.position == 1 and found.record.events_recorded == 0

    def test_concurrent_handlers_leave_contiguous_versions_and_positions(
        self, store: EventsourcingStore
    ) -> None:
        handler = CaseCommandHandler(store, Limits())
        results: list[int] = []
        lock = threading.Lock()

        def work(worker: int) -> None:
            for step in range(15):
                owner = Owner(f"agent-{step % 2}", "g")
                command: c.Command = (
                    c.Assign(case_id="HOT", command_id=f"w{worker}-{step}", actor="t", owner=owner)
                    if step == 0 and worker == 0
                    else c.Transfer(
                        case_id="HOT",
                        command_id=f"w{worker}-{step}",
                        actor="t",
                        to_owner=Owner(f"agent-{worker}-{step}", "g"),
                        reason=TransferReason.WORKLOAD_BALANCING,
                    )
                )
                try:
                    result = handler.execute(command)
                except Exception:
                    continue
                with lock:
                    results.append(result.version)

        handler.execute(c.Assign(case_id="HOT", command_id="seed", actor="t", owner=ALICE))
        threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        stored = store.read_case("HOT", 0, 1000)
        assert [r.event.originator_version for r in stored] == list(range(1, len(stored) + 1))
        assert sorted(results) == list(range(2, len(stored) + 1))
        # A lost race is refused before it draws a position, so positions stay contiguous.
        everything = store.read_all(0, 10_000)
        assert [r.position for r in everything] == list(range(1, len(stored) + 1))

    def test_a_case_cached_by_one_process_is_decided_on_what_another_wrote(
        self, url: str, store: EventsourcingStore
    ) -> None:
        here = CaseCommandHandler(store, Limits())
        elsewhere_store = EventsourcingStore(url, pool_size=2)
        elsewhere = CaseCommandHandler(elsewhere_store, Limits())
        try:
            here.execute(c.Assign(case_id="P", command_id="p1", actor="t", owner=ALICE))
            here.execute(
                c.Pause(case_id="P", command_id="p2", actor="t", reason=PauseReason.SCHEDULED)
            )
            elsewhere.execute(c.Transfer(case_id="P", command_id="p3", actor="t", to_owner=BOB,
                                         reason=TransferReason.OTHER))  # fmt: skip
            elsewhere.execute(c.Resolve(case_id="P", command_id="p4", actor="t"))
            # The first process still caches the case as open and owned by Alice.
            with pytest.raises(RuleViolated) as refused:
                here.execute(c.Assign(case_id="P", command_id="p5", actor="t", owner=ALICE))
            assert refused.value.rule is Rule.CASE_RESOLVED
            reopened = here.execute(c.Reopen(case_id="P", command_id="p6", actor="t"))
            assert reopened.version == 5
            loaded = store.load_case("P")
            assert loaded is not None and loaded.owner == BOB and loaded.version == 5
        finally:
            elsewhere_store.close()


class TestSQLiteEventStore(EventStoreSuite):
    @pytest.fixture
    def url(self, sqlite_url: str) -> str:
        return sqlite_url


class TestPostgresEventStore(EventStoreSuite):
    @pytest.fixture
    def url(self, postgres_url: str) -> str:
        return postgres_url

    def test_a_cache_ahead_of_the_database_heals_within_the_retries(
        self, url: str, store: EventsourcingStore
    ) -> None:
        """A failover to a standby that missed the last commit (or a restore) leaves the cache
        ahead of the database: appends on the cached copy conflict, and within the command's
        retries the case is read afresh and the command decided on what the database holds."""
        handler = CaseCommandHandler(store, Limits())
        handler.execute(c.Assign(case_id="Q", command_id="q1", actor="t", owner=ALICE))
        handler.execute(c.Transfer(case_id="Q", command_id="q2", actor="t", to_owner=BOB,
                                   reason=TransferReason.OTHER))  # fmt: skip
        schema = sql.Identifier(parse_postgres_url(url).params["schema"])
        with psycopg.connect(parse_postgres_url(url).conninfo(), autocommit=True) as conn:
            for table, where in (("ledger_events", "originator_version = 2"),
                                 ("ledger_commands", "command_id = 'q2'")):  # fmt: skip
                conn.execute(
                    sql.SQL("DELETE FROM {}.{} WHERE ").format(schema, sql.Identifier(table))
                    + sql.SQL(where)
                )
        result = handler.execute(c.Pause(case_id="Q", command_id="q3", actor="t",
                                         reason=PauseReason.SCHEDULED))  # fmt: skip
        assert result.version == 2
        loaded = store.load_case("Q")
        assert loaded is not None and (loaded.owner, loaded.version) == (ALICE, 2)

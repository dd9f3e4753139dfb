"""The library's application recorders, extended with the durable idempotency table.

Each accepted command leaves one row in ``<name>_commands``, written in the same transaction as its
events, before the events table is locked. A retried command therefore finds its original answer,
and two racing copies of one command cannot both commit: the second hits the primary key and its
whole transaction (events included) rolls back.

The events themselves are written by the library's own code: on PostgreSQL under its
``LOCK TABLE ... IN EXCLUSIVE MODE``, which makes commit order equal position order, so a reader
tailing positions never passes over an event that commits late.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    Notification,
    OperationalError,
    StoredEvent,
)
from eventsourcing.postgres import (
    PostgresApplicationRecorder,
    PostgresDatastore,
)
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor, SQLiteDatastore
from eventsourcing.utils import retry
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier, Literal

from services.ledger.application.ports import CommandRecord, StoredCommand
from services.ledger.infrastructure.pg_arrays import ByteaArray, Int8Array, TextArray

# From this many rows on, a transaction writes with COPY rather than INSERT.
COPY_THRESHOLD = 64

COMMAND_COLUMNS = (
    "command_id",
    "case_id",
    "kind",
    "fingerprint",
    "version_before",
    "version_after",
)


class LedgerRecorder(Protocol):
    """What the store uses of an application recorder extended with command records."""

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None: ...

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]: ...

    def max_notification_id(self) -> int | None: ...

    def select_commands(self, command_ids: Sequence[str]) -> list[StoredCommand]: ...

    def select_commands_and_events(
        self, command_ids: Sequence[str], case_ids: Sequence[str], after_versions: Sequence[int]
    ) -> tuple[list[StoredCommand], list[StoredEvent]]: ...

    def select_position(self, case_id: str, version: int) -> int | None: ...

    def select_case_notifications(
        self, case_id: str, after_version: int, limit: int
    ) -> list[Notification]: ...


def _record_params(records: Iterable[CommandRecord]) -> list[tuple[Any, ...]]:
    return [
        (
            r.command_id,
            r.case_id,
            r.kind,
            r.fingerprint,
            r.version_before,
            r.version_after,
        )
        for r in records
    ]


def _record_arrays(records: Sequence[CommandRecord]) -> list[list[Any]]:
    """The records' columns, as the arrays the append function takes."""
    return [
        TextArray([r.command_id for r in records]),
        TextArray([r.case_id for r in records]),
        TextArray([r.kind for r in records]),
        TextArray([r.fingerprint for r in records]),
        Int8Array([r.version_before for r in records]),
        Int8Array([r.version_after for r in records]),
    ]


def _stored_command(row: Any) -> StoredCommand:
    return StoredCommand(
        record=CommandRecord(
            command_id=row["command_id"],
            case_id=row["case_id"],
            kind=row["kind"],
            fingerprint=row["fingerprint"],
            version_before=row["version_before"],
            version_after=row["version_after"],
        ),
        position=row["position"],
    )


def _notification(row: Any, position: int, state: bytes) -> Notification:
    return Notification(
        id=position,
        originator_id=row["originator_id"],
        originator_version=row["originator_version"],
        topic=row["topic"],
        state=state,
    )


# Command records, then (under the table lock) a version check and the events, in one statement
# and so one transaction that commits all of it or nothing. Under the lock no other writer can
# move a case, so checking versions here refuses a lost race before the insert draws positions
# from the sequence: a refused append leaves no hole in the global order. A taken command_id
# fails the first insert, before the lock. Either way nothing is stored.
APPEND_FUNCTION = """
CREATE OR REPLACE FUNCTION {schema}.{append}(
    command_ids text[], case_ids text[], kinds text[], fingerprints text[],
    versions_before bigint[], versions_after bigint[],
    originator_ids text[], originator_versions bigint[], topics text[], states bytea[]
) RETURNS TABLE (new_position bigint) LANGUAGE plpgsql AS $$
DECLARE
    taken text[];
BEGIN
    INSERT INTO {schema}.{commands}
        (command_id, case_id, kind, fingerprint, version_before, version_after)
    SELECT * FROM unnest(command_ids, case_ids, kinds, fingerprints, versions_before,
                         versions_after);
    PERFORM set_config('lock_timeout', {lock_timeout}, true);
    LOCK TABLE {schema}.{events} IN EXCLUSIVE MODE;
    SELECT array_agg(first.id ORDER BY first.id) INTO taken
    FROM (SELECT u.id, min(u.version) AS version
          FROM unnest(originator_ids, originator_versions) AS u(id, version)
          GROUP BY u.id) AS first
    WHERE coalesce((SELECT max(e.originator_version) FROM {schema}.{events} e
                    WHERE e.originator_id = first.id), 0) <> first.version - 1;
    IF taken IS NOT NULL THEN
        RAISE EXCEPTION 'versions of % were taken by a concurrent writer', taken
            USING ERRCODE = 'unique_violation';
    END IF;
    -- Positions restart right after the last committed one: no hole after a cut-off
    -- transaction, a crash or a failover (see close_gap_statement).
    PERFORM setval(pg_get_serial_sequence({events_name}, 'notification_id'),
                   coalesce((SELECT max(notification_id) FROM {schema}.{events}), 0) + 1, false);
    PERFORM pg_notify({channel}, '');
    RETURN QUERY
        INSERT INTO {schema}.{events} (originator_id, originator_version, topic, state)
        SELECT * FROM unnest(originator_ids, originator_versions, topics, states)
        RETURNING notification_id;
END
$$
"""


def _first_versions(stored_events: Sequence[StoredEvent]) -> dict[str, int]:
    """Each case's first new version in ``stored_events``."""
    first: dict[str, int] = {}
    for event in stored_events:
        case_id = str(event.originator_id)
        first[case_id] = min(first.get(case_id, event.originator_version), event.originator_version)
    return first


def _refuse_taken(first: dict[str, int], current_rows: Iterable[Any]) -> None:
    """Raise when a case's current version is not just below its first new version."""
    current = {row["originator_id"]: row["version"] or 0 for row in current_rows}  # NULL: none
    taken = [c for c, v in first.items() if current.get(c, 0) != v - 1]
    if taken:
        raise IntegrityError(f"versions of {taken} were taken by a concurrent writer")


def commands_table_for(events_table_name: str) -> str:
    return events_table_name.removesuffix("_events") + "_commands"


class PostgresLedgerRecorder(PostgresApplicationRecorder):
    def __init__(
        self, datastore: PostgresDatastore, *, events_table_name: str = "ledger_events"
    ) -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        schema = Identifier(self.datastore.schema)
        commands = Identifier(commands_table_for(events_table_name))
        events = Identifier(events_table_name)
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {schema}.{commands} ("
                "command_id text PRIMARY KEY, "
                "case_id text NOT NULL, "
                "kind text NOT NULL, "
                "fingerprint text NOT NULL, "
                "version_before bigint NOT NULL, "
                "version_after bigint NOT NULL, "
                "recorded_at timestamptz NOT NULL DEFAULT now())"
            ).format(schema=schema, commands=commands)
        )
        self.insert_commands_statement = SQL(
            "INSERT INTO {schema}.{commands} "
            "(command_id, case_id, kind, fingerprint, version_before, version_after) "
            "SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], "
            "%s::bigint[], %s::bigint[])"
        ).format(schema=schema, commands=commands)
        self.select_commands_statement = SQL(
            "SELECT c.*, e.notification_id AS position FROM {schema}.{commands} c "
            "JOIN {schema}.{events} e "
            "ON e.originator_id = c.case_id AND e.originator_version = c.version_after "
            "WHERE c.command_id = ANY(%s)"
        ).format(schema=schema, commands=commands, events=events)
        self.select_position_statement = SQL(
            "SELECT notification_id FROM {schema}.{events} "
            "WHERE originator_id = %s AND originator_version = %s"
        ).format(schema=schema, events=events)

        self.copy_commands_statement = SQL(
            "COPY {schema}.{commands} "
            "(command_id, case_id, kind, fingerprint, version_before, version_after) FROM STDIN"
        ).format(schema=schema, commands=commands)
        self.copy_events_statement = SQL(
            "COPY {schema}.{events} (originator_id, originator_version, topic, state) "
            "FROM STDIN (FORMAT BINARY)"
        ).format(schema=schema, events=events)
        # Under the table lock: the next position is the last committed one plus one. A sequence
        # alone skips values whenever its drawn numbers are not committed — a transaction cut off
        # between insert and commit, a crash, and every failover (a standby's copy of a sequence
        # runs up to 32 values ahead of the last one used, as PostgreSQL logs it in advance).
        self.close_gap_statement = SQL(
            "SELECT setval(pg_get_serial_sequence({table}, 'notification_id'), "
            "coalesce(max(notification_id), 0) + 1, false) FROM {schema}.{events}"
        ).format(
            table=Literal(f"{self.datastore.schema}.{events_table_name}"),
            schema=schema,
            events=events,
        )
        self.last_position_statement = SQL(
            "SELECT currval(pg_get_serial_sequence({table}, 'notification_id')) AS last"
        ).format(table=Literal(f"{self.datastore.schema}.{events_table_name}"))
        # One backward index probe per case. (``originator_id = ANY(...) GROUP BY`` let the
        # planner choose a scan of the whole table, under the table lock, for every import batch.)
        self.select_versions_statement = SQL(
            "SELECT u.id AS originator_id, (SELECT max(e.originator_version) "
            "FROM {schema}.{events} e WHERE e.originator_id = u.id) AS version "
            "FROM unnest(%s::text[]) AS u(id)"
        ).format(schema=schema, events=events)
        # A batch's reads in one round trip: the stored commands among its command ids, and each
        # case's events after the version this process already holds (0: all of them).
        self.select_commands_and_events_statement = SQL(
            "SELECT c.command_id, c.case_id, c.kind, c.fingerprint, c.version_before, "
            "c.version_after, e.notification_id AS position, NULL::text AS topic, "
            "NULL::bytea AS state FROM {schema}.{commands} c "
            "JOIN {schema}.{events} e "
            "ON e.originator_id = c.case_id AND e.originator_version = c.version_after "
            "WHERE c.command_id = ANY(%s::text[]) "
            "UNION ALL "
            "SELECT NULL, e.originator_id, NULL, NULL, NULL, e.originator_version, NULL, e.topic, "
            "e.state FROM unnest(%s::text[], %s::bigint[]) AS u(case_id, after_version) "
            "JOIN {schema}.{events} e "
            "ON e.originator_id = u.case_id AND e.originator_version > u.after_version"
        ).format(schema=schema, commands=commands, events=events)
        append = Identifier(events_table_name.removesuffix("_events") + "_append")
        self.sql_create_statements.append(
            SQL(APPEND_FUNCTION).format(
                schema=schema,
                append=append,
                commands=commands,
                events=events,
                lock_timeout=Literal(f"{self.datastore.lock_timeout}s"),
                channel=Literal(self.channel_name),
                events_name=Literal(f"{self.datastore.schema}.{events_table_name}"),
            )
        )
        self.creation_lock_statement = SQL("SELECT pg_advisory_xact_lock(hashtext({}))").format(
            Literal(f"{self.datastore.schema}.{events_table_name}")
        )
        self.append_statement = SQL(
            "SELECT * FROM {schema}.{append}(%s::text[], %s::text[], %s::text[], %s::text[], "
            "%s::bigint[], %s::bigint[], %s::text[], %s::bigint[], %s::text[], %s::bytea[])"
        ).format(schema=schema, append=append)
        self.select_case_statement = SQL(
            "SELECT * FROM {schema}.{events} WHERE originator_id = %s AND originator_version > %s "
            "ORDER BY originator_version LIMIT %s"
        ).format(schema=schema, events=events)

    def _create_table(self, curs: Cursor[DictRow]) -> None:
        # Processes starting together must not replace the append function at the same instant.
        curs.execute(self.creation_lock_statement)
        super()._create_table(curs)

    def _insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        records: Sequence[CommandRecord] = kwargs.get("command_records", ())
        if len(records) >= COPY_THRESHOLD:
            with curs.copy(self.copy_commands_statement) as copy:
                for row in _record_params(records):
                    copy.write_row(row)
        elif records:
            columns = list(zip(*_record_params(records), strict=True))
            curs.execute(self.insert_commands_statement, [list(col) for col in columns])
        super()._insert_events(curs, stored_events, **kwargs)

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """Command records, then (under the table lock) a version check and the events: one
        transaction that commits all of it or nothing.

        A retry after an ambiguous commit is safe: the command rows make a second copy fail.
        """
        records: Sequence[CommandRecord] = kwargs.get("command_records", ())
        if stored_events and max(len(stored_events), len(records)) < COPY_THRESHOLD:
            return self._append(stored_events, records)
        with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
            self._insert_events(curs, stored_events, **kwargs)
            if not stored_events:
                return []
            self._lock_table(curs)
            # Under the table lock no other writer can move a case, so checking versions here
            # refuses a lost race before the insert draws positions from the sequence, and the
            # sequence restarts right after the last committed position: no hole in the global
            # order, whatever happened to earlier transactions or to the previous primary.
            self._refuse_taken_versions(curs, stored_events)
            curs.execute(self.close_gap_statement, prepare=True)
            self._notify_channel(curs)
            return self._copy_stored_events(curs, stored_events)

    def _append(
        self, stored_events: Sequence[StoredEvent], records: Sequence[CommandRecord]
    ) -> list[int]:
        """The same transaction in one statement: the append function (see APPEND_FUNCTION).

        Group commit writes many small batches one after another, so the writer's round trips
        and per-statement overhead set the pace; one call is one round trip.
        """
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                self.append_statement,
                [
                    *_record_arrays(records),
                    TextArray([str(e.originator_id) for e in stored_events]),
                    Int8Array([e.originator_version for e in stored_events]),
                    TextArray([e.topic for e in stored_events]),
                    ByteaArray([e.state for e in stored_events]),
                ],
                prepare=True,
            )
            return [row["new_position"] for row in curs.fetchall()]

    def _copy_stored_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent]
    ) -> list[int]:
        """Binary COPY, PostgreSQL's fastest way in, for large batches (imports).

        We hold the table lock, so no other transaction draws from the position sequence while
        the COPY runs: its rows get consecutive positions in row order, ending at currval.
        """
        with curs.copy(self.copy_events_statement) as copy:
            copy.set_types(["text", "int8", "text", "bytea"])
            for e in stored_events:
                copy.write_row((str(e.originator_id), e.originator_version, e.topic, e.state))
        curs.execute(self.last_position_statement)
        row = curs.fetchone()
        assert row is not None
        last = int(row["last"])
        return list(range(last - len(stored_events) + 1, last + 1))

    def _refuse_taken_versions(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent]
    ) -> None:
        first = _first_versions(stored_events)
        curs.execute(self.select_versions_statement, [TextArray(first)], prepare=True)
        _refuse_taken(first, curs.fetchall())

    def select_commands_and_events(
        self, command_ids: Sequence[str], case_ids: Sequence[str], after_versions: Sequence[int]
    ) -> tuple[list[StoredCommand], list[StoredEvent]]:
        """The stored commands among ``command_ids``, and the events of each case after its
        ``after_versions`` entry, in one round trip. Events come in no particular order."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                self.select_commands_and_events_statement,
                [TextArray(command_ids), TextArray(case_ids), Int8Array(after_versions)],
                prepare=True,
            )
            found, events = [], []
            for row in curs.fetchall():
                if row["command_id"] is None:
                    events.append(
                        StoredEvent(
                            originator_id=row["case_id"],
                            originator_version=row["version_after"],
                            topic=row["topic"],
                            state=bytes(row["state"]),
                        )
                    )
                else:
                    found.append(_stored_command(row))
            return found, events

    def select_commands(self, command_ids: Sequence[str]) -> list[StoredCommand]:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self.select_commands_statement, [list(command_ids)], prepare=True)
            return [_stored_command(row) for row in curs.fetchall()]

    def select_position(self, case_id: str, version: int) -> int | None:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self.select_position_statement, [case_id, version], prepare=True)
            row = curs.fetchone()
            return None if row is None else int(row["notification_id"])

    def select_case_notifications(
        self, case_id: str, after_version: int, limit: int
    ) -> list[Notification]:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self.select_case_statement, [case_id, after_version, limit], prepare=True)
            return [
                _notification(row, row["notification_id"], bytes(row["state"]))
                for row in curs.fetchall()
            ]


class SQLiteLedgerRecorder(SQLiteApplicationRecorder):
    def __init__(
        self, datastore: SQLiteDatastore, events_table_name: str = "ledger_events"
    ) -> None:
        self.commands_table_name = commands_table_for(events_table_name)
        super().__init__(datastore, events_table_name)
        self.insert_commands_statement = (
            f"INSERT INTO {self.commands_table_name} "
            f"({', '.join(COMMAND_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?)"
        )
        self.select_position_statement = (
            f"SELECT rowid FROM {self.events_table_name} "
            "WHERE originator_id = ? AND originator_version = ?"
        )

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            f"CREATE TABLE IF NOT EXISTS {self.commands_table_name} ("
            "command_id TEXT PRIMARY KEY, "
            "case_id TEXT NOT NULL, "
            "kind TEXT NOT NULL, "
            "fingerprint TEXT NOT NULL, "
            "version_before INTEGER NOT NULL, "
            "version_after INTEGER NOT NULL, "
            "recorded_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))",
        ]

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        records: Sequence[CommandRecord] = kwargs.get("command_records", ())
        if records:
            c.executemany(self.insert_commands_statement, _record_params(records))
        return super()._insert_events(c, stored_events, **kwargs)

    def select_commands(self, command_ids: Sequence[str]) -> list[StoredCommand]:
        if not command_ids:
            return []
        placeholders = ", ".join("?" for _ in command_ids)
        statement = (
            f"SELECT c.*, e.rowid AS position FROM {self.commands_table_name} c "
            f"JOIN {self.events_table_name} e "
            "ON e.originator_id = c.case_id AND e.originator_version = c.version_after "
            f"WHERE c.command_id IN ({placeholders})"
        )
        with self.datastore.transaction(commit=False) as c:
            c.execute(statement, list(command_ids))
            return [_stored_command(row) for row in c.fetchall()]

    def select_commands_and_events(
        self, command_ids: Sequence[str], case_ids: Sequence[str], after_versions: Sequence[int]
    ) -> tuple[list[StoredCommand], list[StoredEvent]]:
        events = [
            event
            for case_id, after in zip(case_ids, after_versions, strict=True)
            for event in self.select_events(case_id, gt=after)
        ]
        return self.select_commands(command_ids), events

    def select_position(self, case_id: str, version: int) -> int | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute(self.select_position_statement, (case_id, version))
            row = c.fetchone()
            return None if row is None else int(row["rowid"])

    def select_case_notifications(
        self, case_id: str, after_version: int, limit: int
    ) -> list[Notification]:
        statement = (
            f"SELECT rowid, * FROM {self.events_table_name} "
            "WHERE originator_id = ? AND originator_version > ? ORDER BY originator_version LIMIT ?"
        )
        with self.datastore.transaction(commit=False) as c:
            c.execute(statement, (case_id, after_version, limit))
            return [_notification(row, row["rowid"], row["state"]) for row in c.fetchall()]

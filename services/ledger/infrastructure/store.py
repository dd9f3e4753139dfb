"""The event store adapter: the eventsourcing Application and recorders behind the application's port."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Generic, Protocol, Self, TypeVar, cast
from urllib.parse import unquote, urlsplit

import psycopg
from eventsourcing.application import Application
from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    JSONTranscoder,
    Notification,
    OperationalError,
    StoredEvent,
)
from eventsourcing.utils import get_topic
from psycopg import sql

from services.ledger.application.errors import StoreUnavailable
from services.ledger.application.ports import (
    AppendConflict,
    CommandRecord,
    RecordedEvent,
    StoredCommand,
)
from services.ledger.domain.case import Case, CaseState, SealedEvent
from services.ledger.infrastructure.postgres_url import PostgresUrl, parse_postgres_url
from services.ledger.infrastructure.recorders import (
    LedgerRecorder,
    PostgresLedgerRecorder,
    SQLiteLedgerRecorder,
)
from services.ledger.infrastructure.transcoding import (
    LedgerJSONTranscoder,
    register_domain_transcodings,
)


class LedgerApplication(Application[str]):
    """The library's Application, configured for text case ids and the ledger's recorders."""

    name = "Ledger"  # the events table is "ledger_events", the command table "ledger_commands"

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        register_domain_transcodings(transcoder)


WARM_CONNECTIONS = 2


def persistence_env(database_url: str, pool_size: int) -> dict[str, str]:
    """Translate a database URL into the library's environment settings."""
    parts = urlsplit(database_url)
    common = {
        "ORIGINATOR_ID_TYPE": "text",
        "CREATE_TABLE": "y",
        # The library's JSON format, written by a faster encoder (the same bytes).
        "TRANSCODER_TOPIC": get_topic(LedgerJSONTranscoder),
    }
    if parts.scheme == "sqlite":
        path = unquote(parts.path)
        if parts.netloc in ("", "localhost") and path.startswith("/./"):
            path = path[1:]  # sqlite:///./var/x.sqlite is relative to the working directory
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return common | {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": path,
            "APPLICATION_RECORDER_TOPIC": get_topic(SQLiteLedgerRecorder),
            "SQLITE_LOCK_TIMEOUT": "30",
        }
    if parts.scheme in ("postgresql", "postgres"):
        url = parse_postgres_url(database_url)
        return common | {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "APPLICATION_RECORDER_TOPIC": get_topic(PostgresLedgerRecorder),
            # Tables are made once the pool knows the URL's libpq options (EventsourcingStore).
            "CREATE_TABLE": "n",
            "POSTGRES_DBNAME": url.dbname,
            # Several hosts (failover) travel as libpq's comma-separated lists.
            "POSTGRES_HOST": url.host_list,
            "POSTGRES_PORT": url.port_list,
            "POSTGRES_USER": url.user,
            "POSTGRES_PASSWORD": url.password,
            "POSTGRES_SCHEMA": url.params.get("schema", "public"),
            # A few connections up front, more on demand up to pool_size: with group commit one
            # writer connection carries every unary command, and pools opened at full size (per
            # process, per test server) soon exhaust a shared server's max_connections.
            "POSTGRES_POOL_SIZE": str(min(pool_size, WARM_CONNECTIONS)),
            "POSTGRES_MAX_OVERFLOW": str(max(pool_size - WARM_CONNECTIONS, 0)),
            "POSTGRES_LOCK_TIMEOUT": url.params.get("lock_timeout", "10"),
            "POSTGRES_CONNECT_TIMEOUT": url.params.get("connect_timeout", "5"),
            # No pre-ping: it costs a round trip per checkout, and a dead connection already
            # surfaces as OperationalError, which the recorder retries (idempotently).
            "POSTGRES_PRE_PING": "n",
        }
    raise ValueError(
        f"unsupported database URL scheme {parts.scheme!r}: use sqlite:///PATH or postgresql://..."
    )


class _Cacheable(Protocol):
    """A case state that can be cached: the aggregate or a compact ``CaseState``."""

    @property
    def id(self) -> str: ...

    @property
    def version(self) -> int: ...

    def copy(self) -> Self: ...


CachedCase = TypeVar("CachedCase", bound=_Cacheable)


class CaseCache(Generic[CachedCase]):
    """Recently written cases, so a busy case is not rebuilt from its whole history per command.

    Hands out copies: a command that mutates its copy and then loses a race leaves the cached
    state untouched.
    """

    def __init__(self, max_cases: int) -> None:
        self._max_cases = max_cases
        self._cases: OrderedDict[str, CachedCase] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, case_id: str) -> CachedCase | None:
        with self._lock:
            case = self._cases.get(case_id)
            if case is None:
                return None
            self._cases.move_to_end(case_id)
        return case.copy()

    def discard(self, case_ids: Iterable[str]) -> None:
        with self._lock:
            for case_id in case_ids:
                self._cases.pop(case_id, None)

    def put(self, case: CachedCase) -> None:
        if self._max_cases <= 0:
            return
        with self._lock:
            self._cases[case.id] = case
            self._cases.move_to_end(case.id)
            while len(self._cases) > self._max_cases:
                self._cases.popitem(last=False)


class EventsourcingStore:
    """Implements the application's EventStore port with the eventsourcing library."""

    def __init__(self, database_url: str, pool_size: int = 8, cache_size: int = 10_000) -> None:
        self.database_url = database_url
        env = persistence_env(database_url, pool_size)
        postgres = None
        if env["PERSISTENCE_MODULE"] == "eventsourcing.postgres":
            postgres = parse_postgres_url(database_url)
            _create_schema(postgres)
        # Settings come only from the URL: stray POSTGRES_* variables in the process must not win.
        saved = {k: os.environ.pop(k) for k in list(os.environ) if k in env}
        try:
            self.app = LedgerApplication(env=env)
        finally:
            os.environ.update(saved)
        self.recorder = cast(LedgerRecorder, self.app.recorder)
        if postgres is not None:
            # The library passes no libpq options through (target_session_attrs for failover,
            # sslmode…): give them to its pool before the pool opens its first connection.
            datastore = cast(PostgresLedgerRecorder, self.recorder).datastore
            cast(dict[str, object], datastore.pool.kwargs).update(postgres.libpq_options())
            cast(PostgresLedgerRecorder, self.recorder).create_table()
        self._cache: CaseCache[Case] = CaseCache(cache_size)
        self._state_cache: CaseCache[CaseState] = CaseCache(cache_size)
        self.is_postgres = isinstance(self.recorder, PostgresLedgerRecorder)
        self._appended = threading.Condition()
        self._append_count = 0
        self._listener: threading.Thread | None = None
        self._closing = threading.Event()
        self.recorder_channel = getattr(self.recorder, "channel_name", "")
        self.conninfo = postgres.conninfo() if postgres is not None else ""

    # --- writes ---------------------------------------------------------------------------------

    def find_commands(self, command_ids: Iterable[str]) -> dict[str, StoredCommand]:
        with _translated_errors():
            found = self.recorder.select_commands(list(command_ids))
        return {stored.record.command_id: stored for stored in found}

    def load_for_commands(
        self, command_ids: Iterable[str], case_ids: Iterable[str]
    ) -> tuple[dict[str, StoredCommand], dict[str, Case | None]]:
        """``find_commands`` and ``load_cases`` together, with one round trip to the database.

        A cached case asks only for its events after the cached version (usually none, or the
        few another process wrote), a case not cached for its whole history, and every case of
        the batch in the same query. Another process may still move a case after this read: the
        version check under the write lock catches that.
        """
        return self._load_with_commands(
            self._cache, self._brought_up_to_date, command_ids, case_ids
        )

    def _brought_up_to_date(self, case: Case | None, newer: list[StoredEvent]) -> Case | None:
        """``case`` (None: not yet known here) with ``newer`` events applied in version order."""
        for stored in sorted(newer, key=_version):
            event = cast(Case.Event, self.app.mapper.to_domain_event(stored))
            case = cast(Case, event.mutate(case))
        return case

    def load_states_for_commands(
        self, command_ids: Iterable[str], case_ids: Iterable[str]
    ) -> tuple[dict[str, StoredCommand], dict[str, CaseState | None]]:
        """``load_for_commands`` as compact case states (the import path's), from their own
        cache: a cached state asks only for the events after its version."""
        return self._load_with_commands(
            self._state_cache, self._state_brought_up_to_date, command_ids, case_ids
        )

    def _load_with_commands(
        self,
        cache: CaseCache[CachedCase],
        brought_up_to_date: Callable[[CachedCase | None, list[StoredEvent]], CachedCase | None],
        command_ids: Iterable[str],
        case_ids: Iterable[str],
    ) -> tuple[dict[str, StoredCommand], dict[str, CachedCase | None]]:
        """The stored commands among ``command_ids`` and each case's state from ``cache``,
        brought up to date with the events after its cached version, in one round trip."""
        wanted = list(dict.fromkeys(case_ids))
        cached = [cache.get(case_id) for case_id in wanted]
        with _translated_errors():
            found, stored_events = self.recorder.select_commands_and_events(
                list(command_ids), wanted, [0 if case is None else case.version for case in cached]
            )
        newer: dict[str, list[StoredEvent]] = {}
        for stored in stored_events:
            newer.setdefault(str(stored.originator_id), []).append(stored)
        cases = {
            case_id: brought_up_to_date(case, newer.get(case_id, []))
            for case_id, case in zip(wanted, cached, strict=True)
        }
        return {stored.record.command_id: stored for stored in found}, cases

    def _state_brought_up_to_date(
        self, state: CaseState | None, newer: list[StoredEvent]
    ) -> CaseState | None:
        if state is None:  # not cached: its whole history, through the aggregate
            case = self._brought_up_to_date(None, newer)
            return None if case is None else CaseState.of(case)
        for stored in sorted(newer, key=_version):
            state.apply(cast(Case.Event, self.app.mapper.to_domain_event(stored)))
        return state

    def load_case(self, case_id: str) -> Case | None:
        return self.load_cases([case_id])[case_id]

    def load_cases(self, case_ids: Iterable[str]) -> dict[str, Case | None]:
        """Current state of each case (None: it does not exist), as private copies."""
        return self.load_for_commands((), case_ids)[1]

    def append(
        self, events: Sequence[Case.Event], cases: Sequence[Case], records: Sequence[CommandRecord]
    ) -> dict[tuple[str, int], int]:
        for case in cases:
            case.collect_events()  # the events travel on their own, in the order given
        try:
            with _translated_errors():
                recordings = self.app.events.put(events, command_records=records)
        except IntegrityError as conflict:
            raise AppendConflict(str(conflict)) from conflict
        for case in cases:
            self._cache.put(case)
        self._bump()
        return {
            (
                str(r.notification.originator_id),
                r.notification.originator_version,
            ): r.notification.id
            for r in recordings
        }

    def append_sealed(
        self,
        events: Sequence[SealedEvent],
        states: Sequence[CaseState],
        records: Sequence[CommandRecord],
    ) -> dict[tuple[str, int], int]:
        stored = [self._stored(event) for event in events]
        try:
            with _translated_errors():
                positions = self.recorder.insert_events(stored, command_records=records)
        except IntegrityError as conflict:
            self._state_cache.discard(state.id for state in states)
            raise AppendConflict(str(conflict)) from conflict
        # Cached aggregates of these cases are now behind: a load catches them up.
        for state in states:
            self._state_cache.put(state)
        self._bump()
        assert positions is not None and len(positions) == len(events)
        return {(e.case_id, e.version): p for e, p in zip(events, positions, strict=True)}

    def _stored(self, event: SealedEvent) -> StoredEvent:
        """What the library's ``Mapper.to_stored_event`` makes of the event this stands for."""
        mapper = self.app.mapper
        state = dict(event.state)
        if event.class_version > 1:
            state["class_version"] = event.class_version
        data = mapper.transcoder.encode(state)
        if mapper.compressor:
            data = mapper.compressor.compress(data)
        if mapper.cipher:
            data = mapper.cipher.encrypt(data)
        return StoredEvent(event.case_id, event.version, event.topic, data)

    def forget_cached(self, case_ids: Iterable[str]) -> None:
        wanted = list(case_ids)
        self._cache.discard(wanted)
        self._state_cache.discard(wanted)

    def position_of(self, case_id: str, version: int) -> int:
        with _translated_errors():
            position = self.recorder.select_position(case_id, version)
        if position is None:
            raise LookupError(f"no event {case_id!r}@{version}")
        return position

    # --- reads ----------------------------------------------------------------------------------

    def read_case(self, case_id: str, after_version: int, limit: int) -> list[RecordedEvent]:
        with _translated_errors():
            notifications = self.recorder.select_case_notifications(case_id, after_version, limit)
        return [self._recorded(n) for n in notifications]

    def read_all(self, after_position: int, limit: int) -> list[RecordedEvent]:
        with _translated_errors():
            notifications = self.recorder.select_notifications(
                start=after_position, limit=limit, inclusive_of_start=False
            )
        return [self._recorded(n) for n in notifications]

    def raw_events(
        self, after_position: int, limit: int, last_position: int | None = None
    ) -> Sequence[Notification]:
        """Stored rows as they are (for auditing): no decoding, no upcasting."""
        with _translated_errors():
            return self.recorder.select_notifications(
                start=after_position, limit=limit, stop=last_position, inclusive_of_start=False
            )

    def raw_case(self, case_id: str, after_version: int, limit: int) -> list[Notification]:
        with _translated_errors():
            return self.recorder.select_case_notifications(case_id, after_version, limit)

    def _recorded(self, notification: Notification) -> RecordedEvent:
        return RecordedEvent(
            notification.id, cast(Case.Event, self.app.mapper.to_domain_event(notification))
        )

    def max_position(self) -> int:
        with _translated_errors():
            return self.recorder.max_notification_id() or 0

    @property
    def append_count(self) -> int:
        """Grows whenever an append may have happened; read it before a read, wait on it after."""
        return self._append_count

    def wait_for_append(self, seen_count: int, timeout: float) -> None:
        """Block until ``append_count`` moves past ``seen_count`` or ``timeout`` passes.

        This process's own appends count at once; on PostgreSQL a LISTEN connection counts every
        other process's appends too (the library NOTIFYs on each insert). Callers still re-read
        after a timeout, so a lost notification costs latency, never an event.
        """
        if self.is_postgres:
            self._ensure_listener()
        with self._appended:
            if self._append_count == seen_count:
                self._appended.wait(timeout)

    def wake_waiters(self) -> None:
        """Wake everything blocked in ``wait_for_append`` (e.g. to notice a stop at once)."""
        self._bump()

    def _bump(self) -> None:
        with self._appended:
            self._append_count += 1
            self._appended.notify_all()

    def _ensure_listener(self) -> None:
        with self._appended:
            if self._listener is not None:
                return
            self._listener = threading.Thread(
                target=self._listen, name="ledger-listen", daemon=True
            )
            self._listener.start()

    def _listen(self) -> None:
        channel = self.recorder_channel
        while not self._closing.is_set():
            try:
                with psycopg.connect(self.conninfo, autocommit=True) as conn:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                    self._bump()  # anything appended while we were not listening
                    while not self._closing.is_set():
                        for _ in conn.notifies(timeout=0.5, stop_after=1):
                            self._bump()
            except psycopg.Error:
                self._closing.wait(0.5)

    def close(self) -> None:
        self._closing.set()
        self._bump()
        self.app.close()


def _version(event: StoredEvent) -> int:
    return event.originator_version


def _create_schema(url: PostgresUrl) -> None:
    schema = url.params.get("schema", "public")
    if schema == "public":
        return
    try:
        with psycopg.connect(url.conninfo(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    except psycopg.OperationalError as exc:
        raise StoreUnavailable(f"cannot reach PostgreSQL: {exc}") from exc


@contextmanager
def _translated_errors() -> Iterator[None]:
    """Turn 'database unreachable' into StoreUnavailable; let everything else through."""
    try:
        yield
    except (OperationalError, InterfaceError, psycopg.OperationalError) as exc:
        raise StoreUnavailable(f"the event store is unavailable: {exc}") from exc

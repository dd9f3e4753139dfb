"""What the application needs from an event store, whatever database is behind it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from services.ledger.domain.case import Case, CaseState, SealedEvent


@dataclass(frozen=True, slots=True)
class CommandRecord:
    """The durable idempotency record of an accepted command, written with its events."""

    command_id: str
    case_id: str
    kind: str
    fingerprint: str
    version_before: int
    version_after: int

    @property
    def events_recorded(self) -> int:
        return self.version_after - self.version_before


@dataclass(frozen=True, slots=True)
class StoredCommand:
    record: CommandRecord
    position: int


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """A stored case event with its place in the global order."""

    position: int
    event: Case.Event


class AppendConflict(Exception):
    """The append lost a race: another writer took a case version or a command_id first.

    Nothing of the attempted append was stored; deciding again on fresh state is safe.
    """


class EventStore(Protocol):
    def find_commands(self, command_ids: Iterable[str]) -> dict[str, StoredCommand]: ...

    def load_cases(self, case_ids: Iterable[str]) -> dict[str, Case | None]:
        """Each case's current state (None when it does not exist), as copies the caller owns."""
        ...

    def load_for_commands(
        self, command_ids: Iterable[str], case_ids: Iterable[str]
    ) -> tuple[dict[str, StoredCommand], dict[str, Case | None]]:
        """``find_commands`` and ``load_cases`` at once (a batch needs both, and fast)."""
        ...

    def append(
        self, events: Sequence[Case.Event], cases: Sequence[Case], records: Sequence[CommandRecord]
    ) -> dict[tuple[str, int], int]:
        """Write ``events`` (in that order) and the records in one transaction.

        ``cases`` are the aggregates the events came from, in their new state, for caching.

        Returns the global position of each new event by (case_id, version). Raises AppendConflict
        when a version or command_id was taken concurrently, StoreUnavailable when the store is down.
        """
        ...

    def load_states_for_commands(
        self, command_ids: Iterable[str], case_ids: Iterable[str]
    ) -> tuple[dict[str, StoredCommand], dict[str, CaseState | None]]:
        """``load_for_commands`` with each case as a compact ``CaseState`` the caller owns."""
        ...

    def append_sealed(
        self,
        events: Sequence[SealedEvent],
        states: Sequence[CaseState],
        records: Sequence[CommandRecord],
    ) -> dict[tuple[str, int], int]:
        """``append`` for events decided on compact states: the same transaction, and the same
        stored bytes as the events' objects would be stored as. ``states`` are the cases in
        their new state, for caching."""
        ...

    def forget_cached(self, case_ids: Iterable[str]) -> None:
        """Drop any cached state of these cases: their next load reads the database afresh."""
        ...

    def position_of(self, case_id: str, version: int) -> int: ...

    def read_case(self, case_id: str, after_version: int, limit: int) -> list[RecordedEvent]: ...

    def read_all(self, after_position: int, limit: int) -> list[RecordedEvent]: ...

    def max_position(self) -> int: ...

    @property
    def append_count(self) -> int:
        """A counter that moves whenever an append may have happened (here or elsewhere)."""
        ...

    def wait_for_append(self, seen_count: int, timeout: float) -> None:
        """Block until ``append_count`` moves past ``seen_count``, or ``timeout`` seconds pass."""
        ...

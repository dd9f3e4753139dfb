"""Checking the hash chains from stored rows (or export lines), without the domain classes.

Two chains are checked:

* **per case** — each event's ``chain_hash`` must equal the hash of its canonical document
  (``services/ledger/domain/chain.py``) built from the stored row and the previous event's hash;
  versions must run 1, 2, 3, … in position order.
* **global** — positions must run without holes, and a running hash over the global order,
  ``G(p) = sha256("{G(p-1)}\\n{p}\\n{case_id}\\n{version}\\n{chain_hash}")`` from ``G(0) = GENESIS``,
  must equal every checkpoint the checkpointer wrote (``services/audit/checkpoints.py``). That is
  what catches a row that was deleted from the end, reordered across cases, or replaced by a
  forger who recomputed its case's chain.

After a break the check carries on from the hash found in the row, so one tampered row is one
break, and independent tampering further on is reported too.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.ledger.domain.chain import CHAIN_FIELD, GENESIS, link_hash, utc_text

# How many breaks a report keeps in full; the count goes on.
MAX_REPORTED_BREAKS = 100


class Broken:
    """Kinds of break, as reported (stable strings: callers may match on them)."""

    HASH_MISMATCH = "HASH_MISMATCH"
    UNCHAINED = "UNCHAINED"
    VERSION_SEQUENCE = "VERSION_SEQUENCE"
    PREVIOUS_MISMATCH = "PREVIOUS_MISMATCH"
    POSITION_GAP = "POSITION_GAP"
    POSITION_ORDER = "POSITION_ORDER"
    CHECKPOINT_MISMATCH = "CHECKPOINT_MISMATCH"
    TRUNCATED = "TRUNCATED"
    UNREADABLE = "UNREADABLE"


@dataclass(frozen=True, slots=True)
class Break:
    kind: str
    case_id: str
    version: int
    position: int
    expected: str
    found: str
    detail: str

    def describe(self) -> str:
        where = f"position {self.position}"
        if self.case_id:
            where = f"case {self.case_id!r} version {self.version} at {where}"
        return f"{self.kind} {where}: {self.detail} (expected {self.expected}, found {self.found})"


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """One event as stored: what the chain is computed from."""

    position: int
    case_id: str
    version: int
    topic: str
    class_version: int
    fields: dict[str, Any]
    chain_hash: str | None  # None: the row carries none (stored before the chain existed)

    @property
    def occurred_at(self) -> str:
        return str(self.fields.get("occurred_at", ""))

    @property
    def recorded_at(self) -> str:
        return str(self.fields.get("timestamp", ""))

    def computed_hash(self, previous_hash: str) -> str:
        return link_hash(
            self.case_id, self.version, self.topic, self.class_version, self.fields, previous_hash
        )


def _unwrapped(value: dict[str, Any]) -> Any:
    """``json.loads`` object hook: inner objects come first, so one pass unwraps them all."""
    if len(value) == 2 and "_type_" in value and "_data_" in value:
        data = value["_data_"]
        if value["_type_"] == "datetime_iso":
            # The library writes isoformat(); a UTC time with microseconds needs no parsing.
            if len(data) == 32 and data.endswith("+00:00") and data[19] == ".":
                return data[:26] + "Z"
            return utc_text(datetime.fromisoformat(data))
        return data
    return value


def _no_float(text: str) -> Any:
    raise TypeError(f"a float ({text}) in a stored event")


def plain_state(text: str | bytes) -> Any:
    """A stored state as canonical values: the library's ``{"_type_", "_data_"}`` wrappers become
    their data, a datetime its UTC text (the same rules the domain hashes by); floats refused."""
    return json.loads(text, object_hook=_unwrapped, parse_float=_no_float)


def record_from_row(
    position: int, case_id: str, version: int, topic: str, state: bytes
) -> StoredRecord:
    """Parse a stored row; raises ValueError/TypeError when the state is not an event's JSON."""
    decoded = plain_state(state)
    if not isinstance(decoded, dict):
        raise TypeError("stored state is not a JSON object")
    class_version = decoded.pop("class_version", 1)
    chain_hash = decoded.pop(CHAIN_FIELD, None)
    return StoredRecord(
        position=position,
        case_id=case_id,
        version=version,
        topic=topic,
        class_version=int(class_version),
        fields=decoded,
        chain_hash=chain_hash or None,
    )


def global_link(previous: str, position: int, case_id: str, version: int, chain_hash: str) -> str:
    text = f"{previous}\n{position}\n{case_id}\n{version}\n{chain_hash}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The global running hash after ``position``, with the holes the checkpointer passed."""

    position: int
    global_hash: str
    gaps: tuple[int, ...] = ()


@dataclass
class Report:
    """What a verification found: counts, and every break (the first ``MAX_REPORTED_BREAKS``)."""

    scope: str
    events: int = 0
    cases: int = 0
    first_position: int = 0
    last_position: int = 0
    checkpoints: int = 0
    break_count: int = 0
    breaks: list[Break] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.break_count == 0

    def add(self, broken: Break) -> None:
        self.break_count += 1
        if len(self.breaks) < MAX_REPORTED_BREAKS:
            self.breaks.append(broken)

    def summary(self) -> str:
        verdict = "OK" if self.ok else f"BROKEN ({self.break_count} breaks)"
        span = (
            f"positions {self.first_position}..{self.last_position}" if self.events else "no events"
        )
        sealed = f", {self.checkpoints} checkpoints checked" if self.checkpoints else ""
        return (
            f"{self.scope}: {verdict}; {self.events} events of {self.cases} cases, {span}{sealed}"
        )


@dataclass(slots=True)
class _CaseLink:
    version: int
    chain_hash: str
    position: int


Anchor = Callable[[str, int], str | None]
"""The stored chain hash of (case, version), for a check that starts mid-case."""


class CaseChains:
    """Checks each case's chain over records fed in the case's order (position or version)."""

    def __init__(self, report: Report, anchor: Anchor | None = None) -> None:
        self._report = report
        self._anchor = anchor
        self._last: dict[str, _CaseLink] = {}

    def check(self, record: StoredRecord, previous_hint: str | None = None) -> None:
        """``previous_hint``: the previous hash a record claims (export lines), if any."""
        last = self._last.get(record.case_id)
        if last is None:
            self._report.cases += 1
            last = self._start(record, previous_hint)
        expected_version = last.version + 1
        if record.version != expected_version:
            self._report.add(
                Break(
                    Broken.VERSION_SEQUENCE,
                    record.case_id,
                    record.version,
                    record.position,
                    str(expected_version),
                    str(record.version),
                    f"after version {last.version} comes version {record.version}",
                )
            )
        if record.position <= last.position:
            self._report.add(
                Break(
                    Broken.POSITION_ORDER,
                    record.case_id,
                    record.version,
                    record.position,
                    f"> {last.position}",
                    str(record.position),
                    f"version {record.version} sits before version {last.version} in the "
                    "global order",
                )
            )
        if previous_hint is not None and previous_hint != last.chain_hash:
            self._report.add(
                Break(
                    Broken.PREVIOUS_MISMATCH,
                    record.case_id,
                    record.version,
                    record.position,
                    last.chain_hash,
                    previous_hint,
                    "the previous hash it names is not the chain hash of the event before it",
                )
            )
        expected = record.computed_hash(last.chain_hash)
        if record.chain_hash is None:
            self._report.add(
                Break(
                    Broken.UNCHAINED,
                    record.case_id,
                    record.version,
                    record.position,
                    expected,
                    "",
                    "the event carries no chain hash",
                )
            )
        elif record.chain_hash != expected:
            self._report.add(
                Break(
                    Broken.HASH_MISMATCH,
                    record.case_id,
                    record.version,
                    record.position,
                    expected,
                    record.chain_hash,
                    "the stored event does not hash to its chain hash",
                )
            )
        # The highest version so far: after a row that went backwards, the next is still in turn.
        self._last[record.case_id] = _CaseLink(
            max(last.version, record.version), record.chain_hash or "", record.position
        )

    def _start(self, record: StoredRecord, previous_hint: str | None) -> _CaseLink:
        if record.version <= 1:
            return _CaseLink(0, GENESIS, 0)
        # The check starts mid-case: the link before it is taken as found, not re-proved.
        anchored = previous_hint
        if anchored is None and self._anchor is not None:
            anchored = self._anchor(record.case_id, record.version - 1)
        return _CaseLink(record.version - 1, anchored if anchored is not None else "", 0)


class GlobalChain:
    """Checks positions and the running global hash against checkpoints."""

    def __init__(
        self,
        report: Report,
        checkpoints: Sequence[Checkpoint],
        start_after: int = 0,
        start_hash: str = GENESIS,
    ) -> None:
        self._report = report
        self._pending = sorted(
            (c for c in checkpoints if c.position > start_after), key=lambda c: c.position
        )
        self._known_gaps = {gap for c in checkpoints for gap in c.gaps}
        self.position = start_after
        self.hash = start_hash

    def advance(self, record: StoredRecord, report_gaps: bool = True) -> None:
        if record.position != self.position + 1 and report_gaps:
            missing = [
                p for p in range(self.position + 1, record.position) if p not in self._known_gaps
            ]
            if missing or record.position <= self.position:
                self._report.add(
                    Break(
                        Broken.POSITION_GAP,
                        record.case_id,
                        record.version,
                        record.position,
                        str(self.position + 1),
                        str(record.position),
                        f"positions {_ranges(missing)} are missing from the global order"
                        if missing
                        else "positions go backwards",
                    )
                )
        self.hash = global_link(
            self.hash, record.position, record.case_id, record.version, record.chain_hash or ""
        )
        self.position = record.position
        while self._pending and self._pending[0].position <= self.position:
            checkpoint = self._pending.pop(0)
            self._report.checkpoints += 1
            if checkpoint.position == self.position and checkpoint.global_hash != self.hash:
                self._report.add(
                    Break(
                        Broken.CHECKPOINT_MISMATCH,
                        "",
                        0,
                        checkpoint.position,
                        checkpoint.global_hash,
                        self.hash,
                        "the events since the checkpoint before are not the ones it sealed "
                        "(changed, removed, inserted or reordered since)",
                    )
                )
                # Go on from the sealed value, so each damaged stretch is reported once.
                self.hash = checkpoint.global_hash
            elif checkpoint.position != self.position:
                self._report.add(
                    Break(
                        Broken.CHECKPOINT_MISMATCH,
                        "",
                        0,
                        checkpoint.position,
                        f"an event at position {checkpoint.position}",
                        "none",
                        "a sealed position has no event",
                    )
                )

    def finish(self, last_wanted: int | None = None) -> None:
        """Checkpoints beyond the last event (up to ``last_wanted``): events removed at the end."""
        for checkpoint in self._pending:
            if last_wanted is not None and checkpoint.position > last_wanted:
                break
            self._report.checkpoints += 1
            self._report.add(
                Break(
                    Broken.TRUNCATED,
                    "",
                    0,
                    checkpoint.position,
                    f"events up to position {checkpoint.position}",
                    f"the ledger ends at position {self.position}",
                    "a checkpoint seals events that are no longer there",
                )
            )
        self._pending = []


def unreadable(position: int, case_id: str, version: int, error: Exception) -> Break:
    return Break(
        Broken.UNREADABLE, case_id, version, position, "an event", type(error).__name__, str(error)
    )


def _ranges(positions: Iterable[int]) -> str:
    values = sorted(positions)
    if not values:
        return ""
    parts: list[str] = []
    start = prev = values[0]
    for value in values[1:]:
        if value != prev + 1:
            parts.append(str(start) if start == prev else f"{start}..{prev}")
            start = value
        prev = value
    parts.append(str(start) if start == prev else f"{start}..{prev}")
    return ", ".join(parts)


def export_line(record: StoredRecord, previous_hash: str, global_hash: str | None) -> str:
    """One JSON Lines row of an export: enough to re-check the event offline."""
    line: dict[str, Any] = {
        "position": record.position,
        "case_id": record.case_id,
        "version": record.version,
        "type": record.topic.rsplit(".", 1)[-1],
        "topic": record.topic,
        "class_version": record.class_version,
        "occurred_at": record.occurred_at,
        "recorded_at": record.recorded_at,
        "payload": record.fields,
        "hashes": {"previous": previous_hash, "chain": record.chain_hash or ""},
    }
    if global_hash is not None:
        line["hashes"]["global"] = global_hash
    return json.dumps(line, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def record_from_line(line: Mapping[str, Any]) -> StoredRecord:
    return StoredRecord(
        position=int(line["position"]),
        case_id=str(line["case_id"]),
        version=int(line["version"]),
        topic=str(line["topic"]),
        class_version=int(line["class_version"]),
        fields=dict(line["payload"]),
        chain_hash=str(line["hashes"]["chain"]) or None,
    )

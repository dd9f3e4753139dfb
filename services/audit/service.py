"""The auditor's reads: verify a case or a range of the global order, read and export history.

Everything here reads the stored rows as they are (``EventsourcingStore.raw_events``): no
upcasting, no domain classes, so what is checked is what is on disk.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from eventsourcing.persistence import Notification

from services.audit.chain import (
    Break,
    Broken,
    CaseChains,
    GlobalChain,
    Report,
    StoredRecord,
    export_line,
    global_link,
    record_from_line,
    record_from_row,
    unreadable,
)
from services.audit.checkpoints import CheckpointTable
from services.ledger.domain.chain import CHAIN_FIELD, GENESIS
from services.ledger.domain.errors import CaseNotFound
from services.ledger.infrastructure.store import EventsourcingStore

PAGE = 2_000
Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One stored event of a case with the hash it links to, and the corrections that concern it."""

    record: StoredRecord
    previous_hash: str
    corrects_version: int = 0
    corrected_by: tuple[int, ...] = ()


def _parse(row: Notification, report: Report | None) -> StoredRecord:
    try:
        return record_from_row(
            row.id, str(row.originator_id), row.originator_version, row.topic, row.state
        )
    except (ValueError, TypeError, KeyError) as error:
        if report is not None:
            report.add(unreadable(row.id, str(row.originator_id), row.originator_version, error))
        return StoredRecord(
            row.id, str(row.originator_id), row.originator_version, row.topic, 0, {}, None
        )


class Auditor:
    def __init__(self, store: EventsourcingStore, checkpoints: CheckpointTable) -> None:
        self._store = store
        self.checkpoints = checkpoints

    # --- per case -------------------------------------------------------------------------------

    def case_history(self, case_id: str) -> list[HistoryEntry]:
        """The case's events as stored; a correction and the event it corrects name each other."""
        records = list(self._case_records(case_id, None))
        if not records:
            raise CaseNotFound(case_id)
        corrected_by: dict[int, list[int]] = {}
        for record in records:
            if corrects := _corrects(record):
                corrected_by.setdefault(corrects, []).append(record.version)
        entries: list[HistoryEntry] = []
        previous = GENESIS
        for record in records:
            entries.append(
                HistoryEntry(
                    record,
                    previous,
                    _corrects(record),
                    tuple(corrected_by.get(record.version, ())),
                )
            )
            previous = record.chain_hash or ""
        return entries

    def verify_case(self, case_id: str) -> Report:
        report = Report(scope=f"case {case_id!r}")
        chains = CaseChains(report)
        for record in self._case_records(case_id, report):
            chains.check(record)
            _count(report, record)
        if not report.events:
            raise CaseNotFound(case_id)
        return report

    def _case_records(self, case_id: str, report: Report | None) -> Iterator[StoredRecord]:
        after = 0
        while rows := self._store.raw_case(case_id, after, PAGE):
            for row in rows:
                yield _parse(row, report)
            after = rows[-1].originator_version

    # --- ranges of the global order -------------------------------------------------------------

    def verify_range(
        self, first: int = 1, last: int | None = None, progress: Progress | None = None
    ) -> Report:
        last_wanted = last
        last = self._store.max_position() if last is None else last
        report = Report(scope=f"positions {first}..{last}")
        chains = CaseChains(report, anchor=self._anchor)
        base = self.checkpoints.last_before(first - 1)
        global_chain = GlobalChain(
            report,
            # To the end: every checkpoint, so one beyond the last event shows a truncation.
            self.checkpoints.all(up_to=last_wanted),
            start_after=base.position if base else 0,
            start_hash=base.global_hash if base else GENESIS,
        )
        for rows in self._pages(global_chain.position, last):
            for row in rows:
                record = _parse(row, report if row.id >= first else None)
                if record.position < first:
                    global_chain.advance(record, report_gaps=False)
                    continue
                if record.class_version:  # 0: unreadable, already reported
                    chains.check(record)
                global_chain.advance(record)
                _count(report, record)
            if progress is not None:
                progress(rows[-1].id)
        global_chain.finish(last_wanted)
        return report

    def export_range(self, first: int, last: int | None = None) -> Iterator[str]:
        """JSON Lines of positions ``first``..``last`` (see ``export_records``)."""
        for record, previous, global_hash in self.export_records(first, last):
            yield export_line(record, previous, global_hash)

    def export_records(
        self, first: int, last: int | None = None
    ) -> Iterator[tuple[StoredRecord, str, str]]:
        """Each event of positions ``first``..``last`` with its previous hash and the global hash
        at its position, carried forward from the checkpoint before ``first``."""
        last = self._store.max_position() if last is None else last
        base = self.checkpoints.last_before(first - 1)
        position, global_hash = (base.position, base.global_hash) if base else (0, GENESIS)
        previous: dict[str, str] = {}
        for rows in self._pages(position, last):
            for row in rows:
                record = _parse(row, None)
                global_hash = global_link(
                    global_hash,
                    record.position,
                    record.case_id,
                    record.version,
                    record.chain_hash or "",
                )
                if record.position < first:
                    continue
                before = previous.get(record.case_id)
                if before is None:
                    before = self._previous_of(record)
                previous[record.case_id] = record.chain_hash or ""
                yield record, before, global_hash

    def _previous_of(self, record: StoredRecord) -> str:
        if record.version <= 1:
            return GENESIS
        return self._anchor(record.case_id, record.version - 1) or ""

    def export_case(self, case_id: str) -> Iterator[str]:
        for entry in self.case_history(case_id):
            yield export_line(entry.record, entry.previous_hash, None)

    def _pages(self, after: int, last: int) -> Iterator[list[Notification]]:
        while after < last and (rows := list(self._store.raw_events(after, PAGE, last))):
            yield rows
            after = rows[-1].id

    def _anchor(self, case_id: str, version: int) -> str | None:
        rows = self._store.raw_case(case_id, version - 1, 1)
        if not rows or rows[0].originator_version != version:
            return None
        found = json.loads(rows[0].state).get(CHAIN_FIELD)
        return str(found) if found else ""


def _corrects(record: StoredRecord) -> int:
    value = record.fields.get("corrects_version")
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _count(report: Report, record: StoredRecord) -> None:
    if not report.events:
        report.first_position = record.position
    report.events += 1
    report.last_position = max(report.last_position, record.position)


def verify_lines(lines: Iterable[str], scope: str = "export") -> Report:
    """Check an export offline: every line's chain hash, the links between lines of one case, and
    the global hash between consecutive lines (the first line's hashes are taken as anchors)."""
    report = Report(scope=scope)
    chains = CaseChains(report)
    last_global: tuple[int, str] | None = None
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            line = json.loads(text)
            record = record_from_line(line)
            hashes = line["hashes"]
        except (ValueError, TypeError, KeyError) as error:
            report.add(unreadable(0, "", 0, ValueError(f"line {number}: {error}")))
            continue
        for name, value in (
            ("occurred_at", record.occurred_at),
            ("recorded_at", record.recorded_at),
        ):
            if line.get(name) != value:
                report.add(
                    Break(
                        Broken.HASH_MISMATCH,
                        record.case_id,
                        record.version,
                        record.position,
                        value,
                        str(line.get(name)),
                        f"line {number}: {name} differs from the hashed payload",
                    )
                )
        chains.check(record, previous_hint=str(hashes.get("previous", "")))
        found_global = hashes.get("global")
        if found_global is not None:
            if last_global is not None:
                expected = global_link(
                    last_global[1],
                    record.position,
                    record.case_id,
                    record.version,
                    record.chain_hash or "",
                )
                if record.position != last_global[0] + 1:
                    report.add(
                        Break(
                            Broken.POSITION_GAP,
                            record.case_id,
                            record.version,
                            record.position,
                            str(last_global[0] + 1),
                            str(record.position),
                            f"line {number}: the export skips positions",
                        )
                    )
                if found_global != expected:
                    report.add(
                        Break(
                            Broken.CHECKPOINT_MISMATCH,
                            record.case_id,
                            record.version,
                            record.position,
                            expected,
                            str(found_global),
                            f"line {number}: the global hash does not follow from the line before",
                        )
                    )
            last_global = (record.position, str(found_global))
        _count(report, record)
    return report

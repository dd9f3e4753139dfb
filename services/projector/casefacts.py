"""Per-case facts the ownership reports need beyond the other read models.

- the owner at the case's first resolution (the resolver credited by "resolver credit"), person
  and group kept apart, so a group queue that resolved a case credits its group and no person;
- how many times the case was resolved;
- a counter the source system wrote itself, when an importer kept it: ``reassignment_count``
  from the notes (``key=value`` pairs after ``source row:``), the latest value in event time. It
  lets a report check the ledger's group changes against the source's own count.

One row per case, replaced whole like every other per-case read model.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from services.ledger.domain.case import Case
from services.projector.timeline import CaseTimeline

TABLE = "case_facts"
COLUMNS = (
    "case_id TEXT PRIMARY KEY, resolutions INTEGER NOT NULL, first_resolver_agent TEXT, "
    "first_resolver_group TEXT, source_reassignment_count INTEGER"
)

SOURCE_NOTE_PREFIX = "source row: "
_COUNTER = re.compile(r"(?:^|; )reassignment_count=(\d+)(?:;|$)")


def source_note(attributes: Sequence[tuple[str, str]]) -> str:
    """The note an importer writes to keep source attributes (``source row: k=v; k=v``)."""
    return SOURCE_NOTE_PREFIX + "; ".join(f"{key}={value}" for key, value in attributes)


def reassignment_count(event: Case.Event) -> int | None:
    """The source's own counter, when ``event``'s note carries one."""
    note = getattr(event, "note", "")
    if not note.startswith(SOURCE_NOTE_PREFIX):
        return None
    found = _COUNTER.search(note[len(SOURCE_NOTE_PREFIX) :])
    return int(found.group(1)) if found else None


def source_counter(events: Sequence[Case.Event]) -> int | None:
    """The latest counter in event time of ``events`` (any order); a caller adding events in
    event-time order may instead keep the last non-None ``reassignment_count``."""
    counter = None
    for event in sorted(events, key=lambda e: (e.occurred_at, e.originator_version)):
        value = reassignment_count(event)
        if value is not None:
            counter = value
    return counter


def case_fact_rows(timeline: CaseTimeline, counter: int | None) -> list[tuple[Any, ...]]:
    """The case's one row; ``counter`` as ``source_counter`` gives it."""
    first = timeline.resolutions[0].resolver if timeline.resolutions else None
    return [
        (
            timeline.case_id,
            len(timeline.resolutions),
            None if first is None else first.agent_id,
            None if first is None else first.group_id,
            counter,
        )
    ]

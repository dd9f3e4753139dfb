"""Corrections as the read models see them: each corrected event at its corrected time.

A correction never edits the stored event; the timeline is derived from the events as corrected
(the latest correction of an event wins), and the correction events themselves carry no ownership.
The stored history keeps both (``AuditService.ReadCaseHistory``, ``ledger export``).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from datetime import datetime

from services.ledger.domain.case import Case


def as_corrected(events: Sequence[Case.Event]) -> Sequence[Case.Event]:
    """``events`` (in version order) with corrections applied and left out."""
    corrected: dict[int, datetime] = {
        e.corrects_version: e.corrected_occurred_at
        for e in events
        if isinstance(e, Case.OccurrenceCorrected)
    }
    if not corrected:
        return events
    result: list[Case.Event] = []
    for event in events:
        if isinstance(event, Case.OccurrenceCorrected):
            continue
        at = corrected.get(event.originator_version)
        if at is None:
            result.append(event)
            continue
        moved = copy.copy(event)
        object.__setattr__(moved, "occurred_at", at)  # a private copy, never the stored one
        result.append(moved)
    return result

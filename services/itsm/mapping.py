"""Column mappings: which source column is the case, the time, the owner and the status.

Each dataset gets a default mapping (``PRESETS``); any field can be overridden from a JSON file
(``ColumnMapping.with_overrides``). A status is the source's own words (several columns joined
with ``/``); the mapping sorts each status into what it means for ownership: waiting (a typed
pause), resolving, an explicit reopening, neutral (an activity that says nothing about the case's
state), or — anything else — active work. docs/itsm-import.md documents every preset.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any

from services.ledger.domain.values import PauseReason

MISSING_TOKENS = frozenset({"", "-", "?"})


class StatusKind(Enum):
    WORK = "work"
    WAIT = "wait"
    RESOLVE = "resolve"
    REOPEN = "reopen"
    NEUTRAL = "neutral"


@dataclass(frozen=True)
class ColumnMapping:
    name: str
    reader: str  # "xes" or "csv"; a path ending in .csv/.csv.gz is always read as CSV
    case: str
    time: str
    time_format: str  # a strptime format, or "iso" (ISO 8601); times without a zone are UTC
    status: tuple[str, ...]  # columns joined with "/" into the status label
    person: str | None = None
    group: str | None = None
    sequence: str | None = None  # the log's own order inside a case, breaks equal timestamps
    sequence_is_number: bool = False
    waiting: dict[str, PauseReason] = field(default_factory=dict)
    resolving: frozenset[str] = frozenset()
    reopening: frozenset[str] = frozenset()
    neutral: frozenset[str] = frozenset()
    # Only rows with one of these statuses name the case's owner (None: every row does).
    owner_statuses: frozenset[str] | None = None
    # Whether active work on a resolved case reopens it (else only an explicit reopening does).
    work_reopens: bool = True
    keep: tuple[str, ...] = ()  # source columns kept in each event's note
    missing: frozenset[str] = MISSING_TOKENS

    def kind_of(self, status: str) -> StatusKind:
        if status in self.waiting:
            return StatusKind.WAIT
        if status in self.resolving:
            return StatusKind.RESOLVE
        if status in self.reopening:
            return StatusKind.REOPEN
        if status in self.neutral:
            return StatusKind.NEUTRAL
        return StatusKind.WORK

    def parse_time(self, value: str) -> datetime:
        parsed = (
            datetime.fromisoformat(value)
            if self.time_format == "iso"
            else datetime.strptime(value, self.time_format)
        )
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)

    def with_overrides(self, overrides: dict[str, Any]) -> ColumnMapping:
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise ValueError(f"unknown mapping fields: {', '.join(sorted(unknown))}")
        converted: dict[str, Any] = {}
        for key, value in overrides.items():
            if key == "waiting":
                converted[key] = {status: PauseReason(reason) for status, reason in value.items()}
            elif key in {"resolving", "reopening", "neutral", "missing"}:
                converted[key] = frozenset(value)
            elif key == "owner_statuses":
                converted[key] = None if value is None else frozenset(value)
            elif key in {"status", "keep"}:
                converted[key] = tuple(value)
            else:
                converted[key] = value
        return replace(self, **converted)

    def describe(self) -> dict[str, Any]:
        """The mapping as JSON-ready data (the format ``with_overrides`` reads)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, dict):
                value = {k: v.value for k, v in sorted(value.items())}
            elif isinstance(value, frozenset):
                value = sorted(value)
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out


def load_mapping(preset: str, overrides_path: str | None = None) -> ColumnMapping:
    if preset not in PRESETS:
        raise ValueError(f"unknown format {preset!r}; one of: {', '.join(sorted(PRESETS))}")
    mapping = PRESETS[preset]
    if overrides_path:
        mapping = mapping.with_overrides(json.loads(Path(overrides_path).read_text()))
    return mapping


_CUSTOMER = PauseReason.AWAITING_CUSTOMER
_THIRD_PARTY = PauseReason.AWAITING_THIRD_PARTY
_SCHEDULED = PauseReason.SCHEDULED

# BPI Challenge 2013, Volvo IT incidents (XES; the flattened CSV has the same columns).
BPIC13 = ColumnMapping(
    name="bpic13",
    reader="xes",
    case="case:concept:name",
    time="time:timestamp",
    time_format="iso",
    status=("concept:name", "lifecycle:transition"),
    person="org:resource",
    group="org:group",
    waiting={
        "Accepted/Wait - User": _CUSTOMER,
        "Accepted/Wait - Customer": _CUSTOMER,
        "Accepted/Wait - Vendor": _THIRD_PARTY,
        "Accepted/Wait - Implementation": _SCHEDULED,
        "Accepted/Wait": _THIRD_PARTY,
    },
    resolving=frozenset(
        {"Completed/Resolved", "Completed/Closed", "Completed/In Call", "Completed/Cancelled"}
    ),
    neutral=frozenset({"Unmatched/Unmatched"}),
)

# UCI incident management event log (ServiceNow audit export, CSV).
SERVICENOW = ColumnMapping(
    name="servicenow",
    reader="csv",
    case="number",
    time="sys_updated_at",
    time_format="%d/%m/%Y %H:%M",
    status=("incident_state",),
    person="assigned_to",
    group="assignment_group",
    sequence="sys_mod_count",
    sequence_is_number=True,
    waiting={
        "Awaiting User Info": _CUSTOMER,
        "Awaiting Evidence": _CUSTOMER,
        "Awaiting Vendor": _THIRD_PARTY,
        "Awaiting Problem": _THIRD_PARTY,
    },
    resolving=frozenset({"Resolved", "Closed"}),
    neutral=frozenset({"-100"}),
    keep=("incident_state", "reassignment_count", "reopen_count"),
)

# Helpdesk ticket log (XES; the flattened CSV has the same columns).
HELPDESK = ColumnMapping(
    name="helpdesk",
    reader="xes",
    case="case:concept:name",
    time="time:timestamp",
    time_format="iso",
    status=("concept:name",),
    person="org:resource",
    group="workgroup",
    waiting={"Wait": _CUSTOMER},
    resolving=frozenset(
        {"Resolve ticket", "Closed", "RESOLVED", "INVALID", "DUPLICATE", "VERIFIED"}
    ),
)

# BPI Challenge 2014, Rabobank incident activities (CSV): teams only; the owner comes from the
# Assignment and Reassignment rows, other rows name the team that did that activity.
BPIC14 = ColumnMapping(
    name="bpic14",
    reader="csv",
    case="incident_id",
    time="data_stamp",
    time_format="%Y-%m-%d %H:%M:%S",
    status=("incident_activity_type",),
    group="assignment_group",
    sequence="incident_activity_number",
    waiting={"Pending vendor": _THIRD_PARTY},
    resolving=frozenset({"Resolved", "Closed"}),
    reopening=frozenset({"Reopen"}),
    # "Open" names the team that opened the incident: it holds the case until assigned.
    owner_statuses=frozenset(
        {
            "Open",
            "Assignment",
            "Reassignment",
            "External Vendor Assignment",
            "External Vendor Reassignment",
        }
    ),
    # Most activities (updates, CI links, quality indicators) say nothing about the case's state.
    work_reopens=False,
    neutral=frozenset(),
)

PRESETS: dict[str, ColumnMapping] = {m.name: m for m in (BPIC13, SERVICENOW, HELPDESK, BPIC14)}

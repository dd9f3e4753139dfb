"""Rows of one case → ledger commands, in the case's canonical order.

Order inside a case: timestamp, then the log's own sequence column (if the mapping names one),
then file order. Each row becomes the commands that say what it changed, all at the row's time:

- the first row that names an owner → ``Assign``; rows before it are noise (the case has no
  owner yet, so the ledger has no case to hold them);
- a row naming another owner than the current one → ``Transfer`` (person and group both kept:
  a missing person with a group named is that group's queue; a row naming neither level names
  no owner and moves nothing);
- a waiting status → ``Pause`` with the mapping's typed reason (a different waiting reason
  while paused: ``Resume`` then ``Pause``); active work while paused → ``Resume``;
- a resolving status → ``Resolve``; on a resolved case, active work (if the mapping says work
  reopens) or an explicit reopening status → ``Reopen`` first, then the row's other effects;
- a row that changes nothing → ``RecordActivity`` with the status, so every row is one event
  or more and the case's times stay those of the log.

On a resolved case nobody holds the case, so an owner named by a row that does not reopen it is
not a handover: the row is kept as an activity and counted (``owner named on a resolved case``).
``command_id`` = ``<format>:<case>:<row time, epoch s>:<tie>:<step>`` where ``tie`` is the
sequence value (if any) and the row's rank among the case's rows with the same time: the same
file imported again sends the same ids and adds nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.itsm.mapping import ColumnMapping, StatusKind
from services.itsm.readers import Row
from services.ledger.application import commands as c
from services.ledger.domain.values import Owner, PauseReason, TransferReason
from services.projector.casefacts import source_note

NOISE_BEFORE_OWNER = "row before the case's first owner"
NOISE_RESOLVED_OWNER = "owner named on a resolved case (kept as activity)"
NOISE_REOPEN_OPEN = "reopening of a case that is not resolved (kept as activity)"
NOISE_BAD_TIME = "unreadable time"


@dataclass(frozen=True, slots=True)
class SourceRow:
    case_id: str
    at: datetime
    sequence: tuple[int, str] | None
    index: int  # file order
    owner: Owner | None
    status: str
    note: str


@dataclass
class PlanSummary:
    rows: int = 0
    cases: int = 0
    rows_planned: int = 0
    noise: Counter[str] = field(default_factory=Counter)


def source_rows(
    rows: Iterable[Row], mapping: ColumnMapping, summary: PlanSummary
) -> Iterator[SourceRow]:
    # The mapping's fields as locals and one Owner object per distinct owner: this loop runs
    # once per row of a log of up to millions.
    parse_time, time_column, case_column = mapping.parse_time, mapping.time, mapping.case
    status_columns, keep = mapping.status, mapping.keep
    owner_of = _Owners(mapping)
    sequence = mapping.sequence
    index = -1
    try:
        for index, row in enumerate(rows):  # counted in the finally
            try:
                at = parse_time(row[time_column].strip())
            except ValueError:
                summary.noise[NOISE_BAD_TIME] += 1
                continue
            if len(status_columns) == 1:
                status = row.get(status_columns[0], "").strip()
            else:
                status = "/".join([row.get(column, "").strip() for column in status_columns])
            yield SourceRow(
                row[case_column].strip(),
                at,
                None if sequence is None else _sequence(row, mapping),
                index,
                owner_of(row, status),
                status,
                source_note([(k, row.get(k, "").strip()) for k in keep]) if keep else "",
            )
    finally:
        summary.rows += index + 1


def _sequence(row: Row, mapping: ColumnMapping) -> tuple[int, str] | None:
    if mapping.sequence is None:
        return None
    value = row.get(mapping.sequence, "").strip()
    if mapping.sequence_is_number and value.lstrip("-").isdigit():
        return (int(value), "")
    return (len(value), value)  # fixed-width codes order as text; shorter first otherwise


class _Owners:
    """The owner a row names (None: none), one shared ``Owner`` per distinct person and group."""

    def __init__(self, mapping: ColumnMapping) -> None:
        self._person, self._group = mapping.person, mapping.group
        self._missing = mapping.missing
        self._statuses = mapping.owner_statuses
        self._known: dict[tuple[str, str], Owner | None] = {}

    def __call__(self, row: Row, status: str) -> Owner | None:
        if self._statuses is not None and status not in self._statuses:
            return None
        person = "" if self._person is None else row.get(self._person, "").strip()
        group = "" if self._group is None else row.get(self._group, "").strip()
        key = (person, group)
        known = self._known.get(key, _UNKNOWN)
        if known is _UNKNOWN:
            person = "" if person in self._missing else person
            group = "" if group in self._missing else group
            known = self._known[key] = Owner(person, group) if person or group else None
        return known  # type: ignore[return-value]


_UNKNOWN = object()


def group_by_case(rows: Iterable[SourceRow]) -> dict[str, list[SourceRow]]:
    cases: dict[str, list[SourceRow]] = {}
    for row in rows:
        cases.setdefault(row.case_id, []).append(row)
    return cases


@dataclass
class _State:
    owner: Owner | None = None
    paused: PauseReason | None = None
    resolved: bool = False


class RowsOutOfOrder(ValueError):
    """A case's later rows would sort before rows of it already planned (see ``CasePlan``)."""


def _order(row: SourceRow) -> tuple[datetime, tuple[int, str], int]:
    return (row.at, row.sequence or (0, ""), row.index)


class CasePlan:
    """One case's commands, planned from its rows in canonical order.

    Rows can come in parts (a streamed log); a later part continues the case as if all its rows
    had come at once, which holds when every row of it sorts after the rows already planned —
    else ``add`` raises ``RowsOutOfOrder`` before planning any of them.
    """

    def __init__(self, case_id: str, mapping: ColumnMapping, summary: PlanSummary) -> None:
        summary.cases += 1
        self.case_id = case_id
        self._mapping = mapping
        self._summary = summary
        self._state = _State()
        self._ties: dict[datetime, int] = {}
        self._last: tuple[datetime, tuple[int, str], int] | None = None

    def add(self, rows: list[SourceRow]) -> list[c.Command]:
        """The commands of more of the case's rows (``rows`` in any order)."""
        ordered = sorted(rows, key=_order)
        if not ordered:
            return []
        if self._last is not None and _order(ordered[0]) < self._last:
            raise RowsOutOfOrder(
                f"case {self.case_id!r}: rows found after other cases sort before its rows "
                "already imported; import this log whole (--whole-file)"
            )
        self._last = _order(ordered[-1])
        mapping, summary, state, ties = self._mapping, self._summary, self._state, self._ties
        case_id = self.case_id
        actor = f"import:{mapping.name}"
        prefix = f"{mapping.name}:{case_id}:"
        out: list[c.Command] = []
        for row in ordered:
            at = row.at
            rank = ties[at] = ties.get(at, 0) + 1
            # The rank among same-time rows keeps ids unique even where the sequence repeats.
            sequence = f"{row.sequence[1] or row.sequence[0]}-" if row.sequence else ""
            row_id = f"{prefix}{int(at.timestamp())}:{sequence}{rank}"
            planned = _row_commands(row, mapping, state, summary)
            if planned is None:
                continue
            summary.rows_planned += 1
            for step, (factory, specific) in enumerate(planned, start=1):
                out.append(
                    factory(
                        command_id=f"{row_id}:{step}",
                        case_id=case_id,
                        actor=actor,
                        occurred_at=at,
                        **specific,
                    )
                )
        return out


def case_commands(
    case_id: str, rows: list[SourceRow], mapping: ColumnMapping, summary: PlanSummary
) -> list[c.Command]:
    """The commands of one case's rows (``rows`` in any order)."""
    return CasePlan(case_id, mapping, summary).add(rows)


def streamed_commands(
    rows: Iterable[SourceRow], mapping: ColumnMapping, summary: PlanSummary
) -> Iterator[list[c.Command]]:
    """Each run of consecutive rows of one case → its commands, as soon as the run ends.

    For a log whose cases come whole (an XES trace holds its case), this is the whole-file plan
    (``group_by_case`` then ``case_commands``) in the same order, without holding the file. A
    case found again later continues where it stopped (see ``CasePlan``).
    """
    plans: dict[str, CasePlan] = {}
    run: list[SourceRow] = []
    for row in rows:
        if run and row.case_id != run[0].case_id:
            yield _continued(plans, run, mapping, summary)
            run = []
        run.append(row)
    if run:
        yield _continued(plans, run, mapping, summary)


def _continued(
    plans: dict[str, CasePlan], run: list[SourceRow], mapping: ColumnMapping, summary: PlanSummary
) -> list[c.Command]:
    case_id = run[0].case_id
    plan = plans.get(case_id)
    if plan is None:
        plan = plans[case_id] = CasePlan(case_id, mapping, summary)
    return plan.add(run)


Planned = list[tuple[type[c.Command], dict[str, Any]]]


def _row_commands(
    row: SourceRow, mapping: ColumnMapping, state: _State, summary: PlanSummary
) -> Planned | None:
    kind = mapping.kind_of(row.status)
    note = row.note
    if state.owner is None:
        if row.owner is None:
            summary.noise[NOISE_BEFORE_OWNER] += 1
            return None
        state.owner = row.owner
        planned: Planned = [(c.Assign, {"owner": row.owner, "note": note})]
        planned += _status_effects(kind, mapping, row, state, note)
        return planned

    planned = []
    reopens = kind is StatusKind.REOPEN or (
        kind in (StatusKind.WORK, StatusKind.WAIT) and mapping.work_reopens
    )
    if state.resolved:
        if not reopens:
            if row.owner is not None and _differs(row.owner, state.owner):
                summary.noise[NOISE_RESOLVED_OWNER] += 1
            return [(c.RecordActivity, {"activity": row.status, "note": note})]
        planned.append((c.Reopen, {"reason": row.status, "note": note}))
        state.resolved = False
    elif kind is StatusKind.REOPEN:
        summary.noise[NOISE_REOPEN_OPEN] += 1
    if row.owner is not None and _differs(row.owner, state.owner):
        planned.append(
            (c.Transfer, {"to_owner": row.owner, "reason": TransferReason.OTHER, "note": note})
        )
        state.owner = row.owner
    planned += _status_effects(kind, mapping, row, state, note)
    return planned or [(c.RecordActivity, {"activity": row.status, "note": note})]


def _differs(owner: Owner, other: Owner | None) -> bool:
    return owner is not other and owner != other  # rows share one Owner per distinct owner


def _status_effects(
    kind: StatusKind, mapping: ColumnMapping, row: SourceRow, state: _State, note: str
) -> Planned:
    if kind is StatusKind.WAIT:
        reason = mapping.waiting[row.status]
        if state.paused is reason:
            return []
        planned: Planned = []
        if state.paused is not None:
            planned.append((c.Resume, {"note": note}))
        state.paused = reason
        return [*planned, (c.Pause, {"reason": reason, "note": note})]
    if kind is StatusKind.WORK and state.paused is not None:
        state.paused = None
        return [(c.Resume, {"note": note})]
    if kind is StatusKind.RESOLVE:
        state.paused = None
        state.resolved = True
        return [(c.Resolve, {"resolution_code": row.status, "note": note})]
    return []

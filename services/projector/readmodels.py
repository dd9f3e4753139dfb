"""The read-model tables and the rows one case contributes to them.

Times are stored as integer microseconds since the epoch (``*_us``): exact, portable between
SQLite and PostgreSQL, and cheap to subtract. Every row belongs to one case and is a function of
that case's events, so projecting a case is "write the rows that differ from what is stored":
``RowChanges`` upserts changed rows by key and, when a case's rows are unknown or some of them
went away, replaces that case's rows in the table whole — idempotent, equal to a rebuild by
construction. Sums across cases (per owner, per group, the handover network) are computed when
queried.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial, reduce
from typing import Any, TypeVar

from services.ledger.domain.case import Case
from services.ledger.domain.values import PauseReason
from services.projector import casefacts
from services.projector.corrections import as_corrected
from services.projector.credit import (
    CreditEntry,
    CreditPolicy,
    PolicyShares,
    credit_entries,
    postings,
)
from services.projector.database import Cursor, TableShape
from services.projector.handoffs import handoff_stats
from services.projector.timeline import (
    CaseTimeline,
    Level,
    Participation,
    Pause,
    Resolution,
    Tenure,
    derive,
)

TABLES: dict[str, str] = {
    "current": (
        "case_id TEXT PRIMARY KEY, agent_id TEXT NOT NULL, group_id TEXT NOT NULL, "
        "status TEXT NOT NULL, pause_reason TEXT, tier TEXT, version BIGINT NOT NULL, "
        "last_position BIGINT NOT NULL, opened_us BIGINT NOT NULL, last_event_us BIGINT NOT NULL, "
        "owned_since_us BIGINT NOT NULL, participants TEXT NOT NULL"
    ),
    "tenure": (
        "case_id TEXT NOT NULL, level TEXT NOT NULL, seq INTEGER NOT NULL, holder TEXT NOT NULL, "
        "group_id TEXT NOT NULL, tier TEXT, start_us BIGINT NOT NULL, end_us BIGINT, "
        "paused_customer_us BIGINT NOT NULL, paused_third_party_us BIGINT NOT NULL, "
        "paused_scheduled_us BIGINT NOT NULL, PRIMARY KEY (case_id, level, seq)"
    ),
    "swarm": (
        "case_id TEXT NOT NULL, seq INTEGER NOT NULL, agent_id TEXT NOT NULL, "
        "group_id TEXT NOT NULL, role TEXT NOT NULL, start_us BIGINT NOT NULL, end_us BIGINT, "
        "clamped INTEGER NOT NULL, PRIMARY KEY (case_id, seq)"
    ),
    "pause": (
        "case_id TEXT NOT NULL, seq INTEGER NOT NULL, reason TEXT NOT NULL, "
        "start_us BIGINT NOT NULL, end_us BIGINT, clamped INTEGER NOT NULL, "
        "PRIMARY KEY (case_id, seq)"
    ),
    "handoff": (
        "case_id TEXT PRIMARY KEY, person_changes INTEGER NOT NULL, "
        "group_changes INTEGER NOT NULL, person_stations INTEGER NOT NULL, "
        "group_stations INTEGER NOT NULL, unique_persons INTEGER NOT NULL, "
        "unique_groups INTEGER NOT NULL, person_returns INTEGER NOT NULL, "
        "group_returns INTEGER NOT NULL, person_pingpong_returns INTEGER NOT NULL, "
        "group_pingpong_returns INTEGER NOT NULL, person_longest_pingpong INTEGER NOT NULL, "
        "group_longest_pingpong INTEGER NOT NULL, warm INTEGER NOT NULL, cold INTEGER NOT NULL, "
        "tiers_crossed INTEGER NOT NULL"
    ),
    "handover": (
        "case_id TEXT NOT NULL, level TEXT NOT NULL, from_holder TEXT NOT NULL, "
        "to_holder TEXT NOT NULL, n INTEGER NOT NULL, "
        "PRIMARY KEY (case_id, level, from_holder, to_holder)"
    ),
    "credit": (
        "case_id TEXT NOT NULL, policy TEXT NOT NULL, policy_version INTEGER NOT NULL, "
        "agent_id TEXT NOT NULL, group_id TEXT NOT NULL, amount DOUBLE PRECISION NOT NULL, "
        "kind TEXT NOT NULL, resolution_seq INTEGER NOT NULL, at_us BIGINT NOT NULL"
    ),
    "tracking": "name TEXT PRIMARY KEY, position BIGINT NOT NULL",
    casefacts.TABLE: casefacts.COLUMNS,
}

INDEXES: dict[str, list[str]] = {
    "current": ["agent_id", "group_id"],
    "tenure": ["level, holder", "level, end_us"],
    "handover": ["level, from_holder, to_holder"],
    "credit": ["case_id", "agent_id", "group_id"],
}

PER_CASE_TABLES = (
    "current", "tenure", "swarm", "pause", "handoff", "handover", "credit", casefacts.TABLE
)  # fmt: skip

# How many leading columns make a row's key (its primary key); credit rows have none: a case's
# credit rows only ever grow while its events arrive in event-time order, else they are replaced.
KEY_WIDTH: dict[str, int] = {
    "current": 1,
    "tenure": 3,
    "swarm": 2,
    "pause": 2,
    "handoff": 1,
    "handover": 4,
    "credit": 0,
    casefacts.TABLE: 1,
}


def _shape(name: str) -> TableShape:
    definition = re.sub(r",\s*PRIMARY KEY \([^)]*\)", "", TABLES[name])
    columns = [c.split() for c in definition.split(",")]
    names = tuple(c[0] for c in columns)
    types = tuple(" ".join(c[1:3]) if c[1] == "DOUBLE" else c[1] for c in columns)
    return TableShape(name, names, tuple(t.lower() for t in types), KEY_WIDTH[name])


SHAPES: dict[str, TableShape] = {name: _shape(name) for name in PER_CASE_TABLES}


def table(name: str, generation: str = "") -> str:
    return f"rm{generation}_{name}"


def create_tables(cursor: Cursor, generation: str = "") -> None:
    for name, columns in TABLES.items():
        cursor.execute(f"CREATE TABLE IF NOT EXISTS {table(name, generation)} ({columns})")
    for name, index_columns in INDEXES.items():
        for i, columns in enumerate(index_columns):
            cursor.execute(
                f"CREATE INDEX IF NOT EXISTS {table(name, generation)}_i{i} "
                f"ON {table(name, generation)} ({columns})"
            )


def drop_tables(cursor: Cursor, generation: str = "") -> None:
    for name in TABLES:
        cursor.execute(f"DROP TABLE IF EXISTS {table(name, generation)}")


def rename_generation(cursor: Cursor, source: str, target: str, *, postgres: bool) -> None:
    """Give ``source``'s tables ``target``'s names (the old ``target`` tables must be gone)."""
    for name in TABLES:
        for i in range(len(INDEXES.get(name, []))):
            cursor.execute(f"DROP INDEX IF EXISTS {table(name, source)}_i{i}")
        cursor.execute(f"ALTER TABLE {table(name, source)} RENAME TO {table(name, target)}")
        if postgres:  # PostgreSQL names the primary key's index after the table it was made for
            cursor.execute(
                f"ALTER INDEX IF EXISTS {table(name, source)}_pkey "
                f"RENAME TO {table(name, target)}_pkey"
            )
    create_tables(cursor, target)  # indexes under the target's names


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def micros(value: datetime) -> int:
    return (value - _EPOCH) // MICROSECOND  # exact: timedelta // timedelta is integer arithmetic


def from_micros(value: int) -> datetime:
    return datetime.fromtimestamp(value // 1_000_000, tz=UTC).replace(microsecond=value % 1_000_000)


def _optional_micros(value: datetime | None) -> int | None:
    return None if value is None else micros(value)


ZERO = timedelta(0)
PAUSE_COLUMNS = (
    PauseReason.AWAITING_CUSTOMER,
    PauseReason.AWAITING_THIRD_PARTY,
    PauseReason.SCHEDULED,
)


Rows = dict[str, list[tuple[Any, ...]]]


@dataclass(slots=True)
class CaseRows:
    """Everything one case contributes to the read models."""

    case_id: str
    rows: Rows


def case_rows(
    case_id: str,
    events: Sequence[Case.Event],
    last_position: int,
    policies: Sequence[CreditPolicy],
    *,
    with_credit: bool = True,
) -> CaseRows:
    """The case's rows derived whole from all of its events (the reference the projector's
    incremental path must equal); without credit rows when the caller knows they did not change."""
    in_order = sorted(events, key=lambda e: e.originator_version)
    case: Case = reduce(lambda agg, e: e.mutate(agg), in_order, None)
    corrected = as_corrected(in_order)
    timeline = derive(case_id, corrected)
    rows = timeline_rows(case, timeline, last_position)
    rows |= handoff_rows(timeline)
    rows[casefacts.TABLE] = casefacts.case_fact_rows(timeline, casefacts.source_counter(corrected))
    if with_credit:
        rows["credit"] = [credit_row(e) for e in credit_entries(timeline, policies)]
    return CaseRows(case_id, rows)


FinalRows = dict[tuple[Any, ...], tuple[Any, ...]]


def timeline_rows(
    case: Case, timeline: CaseTimeline, last_position: int, final: FinalRows | None = None
) -> Rows:
    """The current-ownership, tenure, swarm and pause rows of a case.

    ``final`` (optional) keeps the rows of closed spans between calls: a caller that only adds
    events in event-time order may pass the same dict each time (a closed span's row can no
    longer change then) and must drop it when a late event arrives.
    """
    case_id = timeline.case_id
    final = {} if final is None else final
    tenures = []
    for level in (Level.PERSON, Level.GROUP):
        tenure_row = partial(_tenure_row, timeline, level)
        tenures += _span_rows(final, level.value, timeline.tenures(level), tenure_row)
    swarm = _span_rows(
        final,
        "swarm",
        timeline.swarm,
        lambda seq, part: (
            case_id,
            seq,
            part.agent_id,
            part.group_id,
            part.role.value,
            micros(part.span.start),
            _optional_micros(part.span.end),
            int(part.span.clamped),
        ),
    )
    pauses = _span_rows(
        final,
        "pause",
        timeline.pauses,
        lambda seq, pause: (
            case_id,
            seq,
            pause.reason.value,
            micros(pause.span.start),
            _optional_micros(pause.span.end),
            int(pause.span.clamped),
        ),
    )
    return {
        "current": [_current_row(case, timeline, last_position)],
        "tenure": tenures,
        "swarm": swarm,
        "pause": pauses,
    }


_Spanned = TypeVar("_Spanned", Tenure, Participation, Pause)


def _span_rows(
    final: FinalRows,
    kind: str,
    items: list[_Spanned],
    make: Callable[[int, _Spanned], tuple[Any, ...]],
) -> list[tuple[Any, ...]]:
    """``make(seq, item)`` for each item (seq from 1), reusing the kept rows of closed spans."""
    rows = []
    for seq, item in enumerate(items, start=1):
        closed = item.span.end is not None
        row = final.get((kind, seq)) if closed else None
        if row is None:
            row = make(seq, item)
            if closed:
                final[(kind, seq)] = row
        rows.append(row)
    return rows


def _current_row(case: Case, timeline: CaseTimeline, last_position: int) -> tuple[Any, ...]:
    # The current tenure at the level the owner is held at: a person, or a group's queue.
    tenures = timeline.person_tenures if case.owner.agent_id else timeline.group_tenures
    owned_since = tenures[-1].span.start if tenures else timeline.opened_at
    participants = json.dumps(
        [
            {"agent_id": m.agent_id, "group_id": m.group_id, "role": m.role.value}
            for m in sorted(case.swarm.values(), key=lambda m: m.agent_id)
        ]
    )
    return (
        case.id,
        case.owner.agent_id,
        case.owner.group_id,
        case.status.value,
        case.pause_reason.value if case.pause_reason else None,
        case.tier.value if case.tier else None,
        case.version,
        last_position,
        micros(timeline.opened_at),
        micros(timeline.last_at),
        micros(owned_since),
        participants,
    )


_NOT_PAUSED = (0,) * len(PAUSE_COLUMNS)


def _tenure_row(timeline: CaseTimeline, level: Level, seq: int, tenure: Tenure) -> tuple[Any, ...]:
    paused_us = _NOT_PAUSED
    if timeline.pauses:
        paused = timeline.paused_within(tenure.span, timeline.last_at)
        paused_us = tuple(paused.get(reason, ZERO) // MICROSECOND for reason in PAUSE_COLUMNS)
    return (
        timeline.case_id,
        level.value,
        seq,  # tenures are numbered 1, 2, … in order: the same as tenure.seq
        tenure.holder,
        tenure.group_id,
        tenure.tier.value if tenure.tier else None,
        micros(tenure.span.start),
        _optional_micros(tenure.span.end),
        *paused_us,
    )


def handoff_rows(timeline: CaseTimeline) -> Rows:
    """The handoff-figures row and the handover-network rows of a case."""
    stats = handoff_stats(timeline)
    p, g = stats.person, stats.group
    handoff = (
        timeline.case_id,
        p.changes,
        g.changes,
        p.stations,
        g.stations,
        p.unique_owners,
        g.unique_owners,
        p.returns,
        g.returns,
        p.pingpong_returns,
        g.pingpong_returns,
        p.longest_pingpong,
        g.longest_pingpong,
        stats.warm,
        stats.cold,
        stats.tiers_crossed,
    )
    edges = [
        (timeline.case_id, level.value, source, target, n)
        for level, level_stats in ((Level.PERSON, p), (Level.GROUP, g))
        for (source, target), n in sorted(level_stats.edges.items())
    ]
    return {"handoff": [handoff], "handover": edges}


def credit_row(entry: CreditEntry) -> tuple[Any, ...]:
    return (
        entry.case_id,
        entry.policy,
        entry.policy_version,
        entry.party.agent_id,
        entry.party.group_id,
        entry.amount,
        entry.kind,
        entry.resolution_seq,
        micros(entry.at),
    )


def credit_rows(
    case_id: str, resolution: Resolution, shares: PolicyShares
) -> list[tuple[Any, ...]]:
    """``credit_row`` of each of ``posted_entries(case_id, resolution, shares)``, made directly:
    a resolution has a dozen or more entries, and the projector makes them for every one."""
    seq = resolution.seq
    posted = [(micros(at), sign, kind) for at, sign, kind in postings(resolution)]
    return [
        (case_id, policy.name, policy.version, *party, sign * amount, posting_kind or kind, seq, at)
        for policy, policy_shares in shares
        for at, sign, posting_kind in posted
        for (party, kind), amount in policy_shares
    ]


class RowChanges:
    """What one batch writes to each table: the cases whose rows are replaced whole, the rows
    that replace a stored row with the same key, and new rows.

    ``add`` compares a case's new rows with the rows stored for it (``None``: not known, e.g. a
    case met for the first time since a restart) and keeps only the difference.
    """

    def __init__(self) -> None:
        self.replaced: dict[str, list[str]] = {name: [] for name in PER_CASE_TABLES}
        self.updated: dict[str, list[tuple[Any, ...]]] = {name: [] for name in PER_CASE_TABLES}
        self.inserted: dict[str, list[tuple[Any, ...]]] = {name: [] for name in PER_CASE_TABLES}

    def add(self, case_id: str, stored: Rows | None, new: Rows) -> None:
        for name, rows in new.items():
            before = None if stored is None else stored.get(name)
            if before is not None and before == rows:
                continue  # nothing changed (often the very list written last time)
            if before is not None and _diff(before, rows, KEY_WIDTH[name], self, name):
                continue
            # not known, or some stored row is gone: write the case's rows in this table afresh
            self.replaced[name].append(case_id)
            self.inserted[name].extend(rows)

    def most_rows(self) -> int:
        """The most rows the changes write to one table."""
        return max(len(self.updated[n]) + len(self.inserted[n]) for n in PER_CASE_TABLES)

    def write(self, cursor: Cursor, generation: str = "") -> None:
        """Apply the changes (in the transaction that also moves the tracking position)."""
        for name in PER_CASE_TABLES:
            target = table(name, generation)
            if self.replaced[name]:
                cursor.delete_where_in(target, "case_id", self.replaced[name])
            updated = self.updated[name]
            if updated or self.inserted[name]:
                cursor.upsert_rows(
                    target, SHAPES[name], updated + self.inserted[name], stored=len(updated)
                )


def _diff(
    before: list[tuple[Any, ...]],
    after: list[tuple[Any, ...]],
    key_width: int,
    changes: RowChanges,
    name: str,
) -> bool:
    """Record in ``changes`` what turns ``before`` into ``after``; False (nothing recorded) when
    a row of ``before`` must go.

    Keyed rows are compared by key (a changed row replaces its stored self); unkeyed rows as a
    multiset (only additions can be recorded).
    """
    if key_width:
        old = {row[:key_width]: row for row in before}
        updated, inserted = [], []
        for row in after:
            was = old.pop(row[:key_width], None)
            if was is None:
                inserted.append(row)
            elif was != row:
                updated.append(row)
        if old:
            return False
        changes.updated[name] += updated
        changes.inserted[name] += inserted
        return True
    remaining = Counter(before)
    added = []
    for row in after:
        if remaining[row]:
            remaining[row] -= 1
        else:
            added.append(row)
    if +remaining:
        return False
    changes.inserted[name] += added
    return True


def read_position(cursor: Cursor, name: str, generation: str = "") -> int:
    cursor.execute(f"SELECT position FROM {table('tracking', generation)} WHERE name = ?", (name,))
    row = cursor.fetchone()
    return int(row[0]) if row else 0


def write_position(cursor: Cursor, name: str, position: int, generation: str = "") -> None:
    cursor.execute(
        f"INSERT INTO {table('tracking', generation)} (name, position) VALUES (?, ?) "
        "ON CONFLICT (name) DO UPDATE SET position = excluded.position",
        (name, position),
    )

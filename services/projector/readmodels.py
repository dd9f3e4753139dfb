"""The read-model tables and the rows one case contributes to them.

Times are stored as integer microseconds since the epoch (``*_us``): exact, portable between
SQLite and PostgreSQL, and cheap to subtract. Every row belongs to one case, so projecting a case
is "delete its rows, insert its new rows" — idempotent, and equal to a rebuild by construction.
Sums across cases (per owner, per group, the handover network) are computed when queried.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import reduce
from typing import Any

from services.ledger.domain.case import Case
from services.ledger.domain.values import PauseReason
from services.projector import casefacts
from services.projector.corrections import as_corrected
from services.projector.credit import CreditEntry, CreditPolicy, credit_entries
from services.projector.database import Cursor
from services.projector.handoffs import handoff_stats
from services.projector.timeline import CaseTimeline, Level, derive

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


def micros(value: datetime) -> int:
    delta = value - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(value: int) -> datetime:
    return datetime.fromtimestamp(value // 1_000_000, tz=UTC).replace(microsecond=value % 1_000_000)


def _optional_micros(value: datetime | None) -> int | None:
    return None if value is None else micros(value)


ZERO = timedelta(0)
MICROSECOND = timedelta(microseconds=1)
PAUSE_COLUMNS = (
    PauseReason.AWAITING_CUSTOMER,
    PauseReason.AWAITING_THIRD_PARTY,
    PauseReason.SCHEDULED,
)


@dataclass(slots=True)
class CaseRows:
    """Everything one case contributes to the read models."""

    case_id: str
    rows: dict[str, list[tuple[Any, ...]]]


def case_rows(
    case_id: str,
    events: Sequence[Case.Event],
    last_position: int,
    policies: Sequence[CreditPolicy],
    *,
    with_credit: bool = True,
) -> CaseRows:
    """The case's rows; without credit rows when the caller knows they cannot have changed."""
    in_order = sorted(events, key=lambda e: e.originator_version)
    case: Case = reduce(lambda agg, e: e.mutate(agg), in_order, None)
    timeline = derive(case_id, as_corrected(in_order))
    return CaseRows(
        case_id,
        {
            "current": [_current_row(case, timeline, last_position)],
            "tenure": _tenure_rows(timeline),
            "swarm": [
                (
                    case_id,
                    seq,
                    p.agent_id,
                    p.group_id,
                    p.role.value,
                    micros(p.span.start),
                    _optional_micros(p.span.end),
                    int(p.span.clamped),
                )
                for seq, p in enumerate(timeline.swarm, start=1)
            ],
            "pause": [
                (
                    case_id,
                    seq,
                    p.reason.value,
                    micros(p.span.start),
                    _optional_micros(p.span.end),
                    int(p.span.clamped),
                )
                for seq, p in enumerate(timeline.pauses, start=1)
            ],
            **_handoff_rows(timeline),
            casefacts.TABLE: casefacts.case_fact_rows(timeline, as_corrected(in_order)),
            **(
                {"credit": [_credit_row(e) for e in credit_entries(timeline, policies)]}
                if with_credit
                else {}
            ),
        },
    )


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


def _tenure_rows(timeline: CaseTimeline) -> list[tuple[Any, ...]]:
    rows = []
    for level in (Level.PERSON, Level.GROUP):
        for tenure in timeline.tenures(level):
            paused = timeline.paused_within(tenure.span, timeline.last_at)
            rows.append(
                (
                    timeline.case_id,
                    level.value,
                    tenure.seq,
                    tenure.holder,
                    tenure.group_id,
                    tenure.tier.value if tenure.tier else None,
                    micros(tenure.span.start),
                    _optional_micros(tenure.span.end),
                    *(paused.get(reason, ZERO) // MICROSECOND for reason in PAUSE_COLUMNS),
                )
            )
    return rows


def _handoff_rows(timeline: CaseTimeline) -> dict[str, list[tuple[Any, ...]]]:
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


def _credit_row(entry: CreditEntry) -> tuple[Any, ...]:
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


def replace_cases(cursor: Cursor, projected: Iterable[CaseRows], generation: str = "") -> None:
    """Swap each case's old rows for its new ones (same transaction as the tracking update).

    A table missing from a case's rows keeps that case's stored rows (they did not change).
    """
    projected = list(projected)
    for name in PER_CASE_TABLES:
        changed = [p for p in projected if name in p.rows]
        cursor.delete_where_in(table(name, generation), "case_id", [p.case_id for p in changed])
        cursor.insert_rows(table(name, generation), [row for p in changed for row in p.rows[name]])


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

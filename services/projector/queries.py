"""Questions answered from the read models. Pure reads; sums across cases happen here."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from services.ledger.domain.errors import CaseNotFound
from services.ledger.domain.values import PauseReason
from services.projector.credit import CreditPolicy
from services.projector.database import Cursor, ReadModelDatabase
from services.projector.readmodels import PAUSE_COLUMNS, from_micros, micros, table
from services.projector.timeline import Level

Clock = Callable[[], datetime]
US = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Participant:
    agent_id: str
    group_id: str
    role: str


@dataclass(frozen=True, slots=True)
class CurrentOwnership:
    case_id: str
    agent_id: str
    group_id: str
    status: str
    pause_reason: str | None
    tier: str | None
    participants: list[Participant]
    version: int
    last_position: int
    opened_at: datetime
    owned_since: datetime
    held_for: timedelta


@dataclass(frozen=True, slots=True)
class Interval:
    level: Level
    holder: str
    group_id: str
    tier: str | None
    start: datetime
    end: datetime | None
    duration: timedelta
    paused: dict[PauseReason, timedelta]


@dataclass(frozen=True, slots=True)
class DurationTotal:
    key: str
    owned: timedelta
    paused: dict[PauseReason, timedelta]
    tenures: int

    @property
    def working(self) -> timedelta:
        return self.owned - sum(self.paused.values(), timedelta(0))


@dataclass(frozen=True, slots=True)
class OwnerAt:
    agent_id: str
    group_id: str
    tier: str | None
    participants: list[Participant]


@dataclass(frozen=True, slots=True)
class CreditLine:
    case_id: str
    agent_id: str
    group_id: str
    amount: float
    kind: str
    resolution_seq: int
    at: datetime


@dataclass(frozen=True, slots=True)
class CreditReport:
    policy: str
    lines: list[CreditLine]

    @property
    def total_credit(self) -> float:
        return sum(line.amount for line in self.lines if line.kind != "assist")

    @property
    def total_assists(self) -> float:
        return sum(line.amount for line in self.lines if line.kind == "assist")


@dataclass(frozen=True, slots=True)
class OverstayTargets:
    """Targets for the current tenure: by group first, then by tier, then the default."""

    default: timedelta = timedelta(hours=8)
    by_group: Mapping[str, timedelta] = field(default_factory=dict)
    by_tier: Mapping[str, timedelta] = field(default_factory=dict)

    def target(self, group_id: str, tier: str | None) -> timedelta:
        if group_id in self.by_group:
            return self.by_group[group_id]
        if tier is not None and tier in self.by_tier:
            return self.by_tier[tier]
        return self.default


CURRENT_COLUMNS = (
    "case_id, agent_id, group_id, status, pause_reason, tier, version, last_position, "
    "opened_us, owned_since_us, participants"
)


def _pause_beyond_last_event(
    now_us: int, since_us: int, start_us: int, last_event_us: int
) -> timedelta:
    """Time an ongoing pause has run since the case's latest event (stored time covers the rest)."""
    return max(now_us - max(since_us, start_us, last_event_us), 0) * US


class OwnershipQueries:
    def __init__(self, database: ReadModelDatabase, clock: Clock) -> None:
        self._db = database
        self._clock = clock

    def _current(self, row: Any, now: datetime) -> CurrentOwnership:
        owned_since = from_micros(row[9])
        return CurrentOwnership(
            case_id=row[0],
            agent_id=row[1],
            group_id=row[2],
            status=row[3],
            pause_reason=row[4],
            tier=row[5],
            version=row[6],
            last_position=row[7],
            opened_at=from_micros(row[8]),
            owned_since=owned_since,
            held_for=max(now - owned_since, timedelta(0)) if row[3] != "resolved" else timedelta(0),
            participants=[Participant(**p) for p in json.loads(row[10])],
        )

    def current_owner(self, case_id: str) -> CurrentOwnership:
        with self._db.reading() as cursor:
            cursor.execute(
                f"SELECT {CURRENT_COLUMNS} FROM {table('current')} WHERE case_id = ?", (case_id,)
            )
            row = cursor.fetchone()
        if row is None:
            raise CaseNotFound(case_id)
        return self._current(row, self._clock())

    def cases_by_owner(self, agent_id: str, group_id: str, limit: int) -> list[CurrentOwnership]:
        column, value = ("agent_id", agent_id) if agent_id else ("group_id", group_id)
        with self._db.reading() as cursor:
            cursor.execute(
                f"SELECT {CURRENT_COLUMNS} FROM {table('current')} "
                f"WHERE {column} = ? AND status <> 'resolved' "
                "ORDER BY owned_since_us, case_id LIMIT ?",
                (value, limit),
            )
            rows = cursor.fetchall()
        now = self._clock()
        return [self._current(row, now) for row in rows]

    def _require_case(self, cursor: Cursor, case_id: str) -> None:
        cursor.execute(f"SELECT 1 FROM {table('current')} WHERE case_id = ?", (case_id,))
        if cursor.fetchone() is None:
            raise CaseNotFound(case_id)

    def owner_at(self, case_id: str, at: datetime) -> OwnerAt:
        at_us = micros(at)
        holding = "start_us <= ? AND (end_us IS NULL OR end_us > ?)"
        with self._db.reading() as cursor:
            self._require_case(cursor, case_id)
            cursor.execute(
                f"SELECT level, holder, group_id, tier FROM {table('tenure')} "
                f"WHERE case_id = ? AND {holding}",
                (case_id, at_us, at_us),
            )
            holders = {row[0]: row for row in cursor.fetchall()}
            cursor.execute(
                f"SELECT agent_id, group_id, role FROM {table('swarm')} "
                f"WHERE case_id = ? AND {holding} ORDER BY agent_id",
                (case_id, at_us, at_us),
            )
            participants = [Participant(*row) for row in cursor.fetchall()]
        person = holders.get(Level.PERSON.value)
        group = holders.get(Level.GROUP.value)
        tier_row = person or group
        return OwnerAt(
            agent_id=person[1] if person else "",
            group_id=group[1] if group else (person[2] if person else ""),
            tier=tier_row[3] if tier_row else None,
            participants=participants,
        )

    def intervals(self, case_id: str, level: Level | None) -> list[Interval]:
        with self._db.reading() as cursor:
            self._require_case(cursor, case_id)
            statement = (
                f"SELECT level, holder, group_id, tier, start_us, end_us, paused_customer_us, "
                f"paused_third_party_us, paused_scheduled_us FROM {table('tenure')} "
                "WHERE case_id = ?"
            )
            params: tuple[Any, ...] = (case_id,)
            if level is not None:
                statement += " AND level = ?"
                params += (level.value,)
            cursor.execute(statement + " ORDER BY level DESC, seq", params)
            rows = cursor.fetchall()
            open_pause = self._open_pause(cursor, case_id)
        now = self._clock()
        return [self._interval(row, now, open_pause) for row in rows]

    def _open_pause(self, cursor: Cursor, case_id: str) -> tuple[PauseReason, int, int] | None:
        cursor.execute(
            f"SELECT p.reason, p.start_us, c.last_event_us FROM {table('pause')} p "
            f"JOIN {table('current')} c ON c.case_id = p.case_id "
            "WHERE p.case_id = ? AND p.end_us IS NULL",
            (case_id,),
        )
        row = cursor.fetchone()
        return (PauseReason(row[0]), int(row[1]), int(row[2])) if row else None

    def _interval(
        self, row: Any, now: datetime, open_pause: tuple[PauseReason, int, int] | None
    ) -> Interval:
        start = from_micros(row[4])
        end = from_micros(row[5]) if row[5] is not None else None
        paused = {reason: row[6 + i] * US for i, reason in enumerate(PAUSE_COLUMNS) if row[6 + i]}
        if end is None and open_pause is not None:
            reason, since_us, last_event_us = open_pause
            extra = _pause_beyond_last_event(micros(now), since_us, row[4], last_event_us)
            if extra > timedelta(0):
                paused[reason] = paused.get(reason, timedelta(0)) + extra
        return Interval(
            level=Level(row[0]),
            holder=row[1],
            group_id=row[2],
            tier=row[3],
            start=start,
            end=end,
            duration=max((end or now) - start, timedelta(0)),
            paused=paused,
        )

    def durations(self, scope: str, key: str, level: Level, limit: int) -> list[DurationTotal]:
        """Totals of tenure time: per case (at ``level``), per person or per group."""
        now_us = micros(self._clock())
        group_column = {"case": "case_id", "person": "holder", "group": "holder"}[scope]
        tenure_level = {"case": level.value, "person": "person", "group": "group"}[scope]
        statement = (
            f"SELECT {group_column}, "
            "SUM(COALESCE(end_us, ?) - start_us), SUM(paused_customer_us), "
            "SUM(paused_third_party_us), SUM(paused_scheduled_us), COUNT(*) "
            f"FROM {table('tenure')} WHERE level = ?"
        )
        params: tuple[Any, ...] = (now_us, tenure_level)
        if key:
            statement += f" AND {group_column} = ?"
            params += (key,)
        statement += f" GROUP BY {group_column} ORDER BY 2 DESC, 1 LIMIT ?"
        params += (limit,)
        with self._db.reading() as cursor:
            cursor.execute(statement, params)
            rows = cursor.fetchall()
            ongoing = self._ongoing_pauses(cursor, group_column, tenure_level, key)
        if key and not rows and scope == "case":
            raise CaseNotFound(key)
        totals = []
        for row in rows:
            paused = {
                reason: int(row[2 + i]) * US for i, reason in enumerate(PAUSE_COLUMNS) if row[2 + i]
            }
            for reason, since_us, start_us, last_event_us in ongoing.get(row[0], []):
                extra = _pause_beyond_last_event(now_us, since_us, start_us, last_event_us)
                paused[reason] = paused.get(reason, timedelta(0)) + extra
            totals.append(DurationTotal(row[0], max(int(row[1]), 0) * US, paused, int(row[5])))
        return totals

    def _ongoing_pauses(
        self, cursor: Cursor, group_column: str, level: str, key: str
    ) -> dict[str, list[tuple[PauseReason, int, int, int]]]:
        """Open tenures of paused cases: stored pause time stops at the case's latest event."""
        statement = (
            f"SELECT t.{group_column}, p.reason, p.start_us, t.start_us, c.last_event_us "
            f"FROM {table('tenure')} t "
            f"JOIN {table('pause')} p ON p.case_id = t.case_id AND p.end_us IS NULL "
            f"JOIN {table('current')} c ON c.case_id = t.case_id "
            "WHERE t.level = ? AND t.end_us IS NULL"
        )
        params: tuple[Any, ...] = (level,)
        if key:
            statement += f" AND t.{group_column} = ?"
            params += (key,)
        cursor.execute(statement, params)
        found: dict[str, list[tuple[PauseReason, int, int, int]]] = {}
        for row in cursor.fetchall():
            found.setdefault(row[0], []).append((PauseReason(row[1]), row[2], row[3], row[4]))
        return found

    def handoff_stats(self, case_id: str) -> dict[str, int]:
        with self._db.reading() as cursor:
            cursor.execute(f"SELECT * FROM {table('handoff')} WHERE case_id = ?", (case_id,))
            row = cursor.fetchone()
        if row is None:
            raise CaseNotFound(case_id)
        names = [
            "person_changes", "group_changes", "person_stations", "group_stations",
            "unique_persons", "unique_groups", "person_returns", "group_returns",
            "person_pingpong_returns", "group_pingpong_returns", "person_longest_pingpong",
            "group_longest_pingpong", "warm", "cold", "tiers_crossed",
        ]  # fmt: skip
        return dict(zip(names, (int(v) for v in row[1:]), strict=True))

    def handover_network(self, level: Level, top_n: int) -> list[tuple[str, str, int]]:
        with self._db.reading() as cursor:
            cursor.execute(
                f"SELECT from_holder, to_holder, SUM(n) FROM {table('handover')} WHERE level = ? "
                "GROUP BY from_holder, to_holder ORDER BY 3 DESC, 1, 2 LIMIT ?",
                (level.value, top_n),
            )
            return [(row[0], row[1], int(row[2])) for row in cursor.fetchall()]

    def credit(
        self, policy: CreditPolicy, case_id: str, agent_id: str, group_id: str
    ) -> CreditReport:
        column, value = (
            ("case_id", case_id) if case_id else ("agent_id", agent_id) if agent_id
            else ("group_id", group_id)
        )  # fmt: skip
        with self._db.reading() as cursor:
            if case_id:
                self._require_case(cursor, case_id)
            cursor.execute(
                f"SELECT case_id, agent_id, group_id, amount, kind, resolution_seq, at_us "
                f"FROM {table('credit')} WHERE {column} = ? AND policy = ? AND policy_version = ? "
                "ORDER BY at_us, case_id, resolution_seq, kind, agent_id",
                (value, policy.name, policy.version),
            )
            rows = cursor.fetchall()
        return CreditReport(
            policy=f"{policy.name}@{policy.version}",
            lines=[
                CreditLine(r[0], r[1], r[2], float(r[3]), r[4], int(r[5]), from_micros(r[6]))
                for r in rows
            ],
        )

    def overstays(
        self, targets: OverstayTargets, group_id: str, limit: int
    ) -> list[tuple[CurrentOwnership, timedelta]]:
        statement = f"SELECT {CURRENT_COLUMNS} FROM {table('current')} WHERE status <> 'resolved'"
        params: tuple[Any, ...] = ()
        if group_id:
            statement += " AND group_id = ?"
            params += (group_id,)
        with self._db.reading() as cursor:
            cursor.execute(statement + " ORDER BY owned_since_us, case_id", params)
            rows = cursor.fetchall()
        now = self._clock()
        found = []
        for row in rows:
            current = self._current(row, now)
            target = targets.target(current.group_id, current.tier)
            if current.held_for > target:
                found.append((current, target))
                if len(found) >= limit:
                    break
        return found

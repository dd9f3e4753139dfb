"""The ownership figures a support manager asks for, read from the read models.

Every figure comes from the projector's tables (current ownership, tenures, handoff statistics,
the handover network, credit, case facts); nothing re-reads a source file. docs/analytics.md
defines each figure exactly; the keys of ``ownership_figures`` are stable.
"""

from __future__ import annotations

import math
from typing import Any

from services.projector.casefacts import TABLE as CASE_FACTS
from services.projector.database import Cursor, ReadModelDatabase
from services.projector.readmodels import table

US_PER_S = 1_000_000


def _top(counts: dict[str, Any], top_n: int | None) -> dict[str, Any]:
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return dict(ranked if top_n is None else ranked[:top_n])


def _seconds(micros: int) -> float:
    return round(micros / US_PER_S, 3)


def duration_summary(durations_us: list[int]) -> dict[str, float | None]:
    """Mean, median (mean of the middle two for an even count) and p90 (nearest rank)."""
    if not durations_us:
        return {"mean": None, "median": None, "p90": None}
    ordered = sorted(durations_us)
    n = len(ordered)
    middle = n // 2
    median2 = ordered[middle] * 2 if n % 2 else ordered[middle - 1] + ordered[middle]
    return {
        "mean": round(sum(ordered) / n / US_PER_S, 3),
        "median": round(median2 / 2 / US_PER_S, 3),
        "p90": _seconds(ordered[math.ceil(0.9 * n) - 1]),
    }


def _changes(cursor: Cursor, column: str, cases: int) -> dict[str, Any]:
    cursor.execute(f"SELECT {column}, COUNT(*) FROM {table('handoff')} GROUP BY {column}")
    distribution = {int(changes): int(n) for changes, n in cursor.fetchall()}
    total = sum(changes * n for changes, n in distribution.items())
    return {
        "mean": round(total / cases, 6) if cases else None,
        "distribution": {str(k): distribution[k] for k in sorted(distribution)},
    }


def _pairs(cursor: Cursor, level: str, top_n: int | None) -> list[list[Any]]:
    cursor.execute(
        f"SELECT from_holder, to_holder, SUM(n) FROM {table('handover')} WHERE level = ? "
        "GROUP BY from_holder, to_holder",
        (level,),
    )
    pairs = sorted(
        ((int(n), a, b) for a, b, n in cursor.fetchall()), key=lambda p: (-p[0], p[1], p[2])
    )
    return [[a, b, n] for n, a, b in (pairs if top_n is None else pairs[:top_n])]


def time_in_hands_us(cursor: Cursor, level: str) -> dict[str, int]:
    """Each holder's summed tenures; a tenure still open ends at the case's last event."""
    cursor.execute(
        f"SELECT t.holder, SUM(COALESCE(t.end_us, c.last_event_us) - t.start_us) "
        f"FROM {table('tenure')} t JOIN {table('current')} c ON c.case_id = t.case_id "
        "WHERE t.level = ? GROUP BY t.holder",
        (level,),
    )
    return {holder: int(total) for holder, total in cursor.fetchall() if int(total) > 0}


def _resolvers(cursor: Cursor, column: str) -> dict[str, int]:
    cursor.execute(
        f"SELECT {column}, COUNT(*) FROM {table(CASE_FACTS)} "
        f"WHERE resolutions > 0 AND {column} <> '' GROUP BY {column}"
    )
    return {holder: int(n) for holder, n in cursor.fetchall()}


def _credit_policies(cursor: Cursor, top_n: int | None) -> dict[str, Any]:
    """Net credit (credits minus reversals) and assists per person, for every policy."""
    cursor.execute(
        f"SELECT policy, policy_version, kind, agent_id, group_id, SUM(amount) "
        f"FROM {table('credit')} GROUP BY policy, policy_version, kind, agent_id, group_id"
    )
    policies: dict[str, dict[str, dict[str, float]]] = {}
    for policy, version, kind, agent_id, group_id, amount in cursor.fetchall():
        label = f"{policy}@{version}"
        books = policies.setdefault(label, {"person": {}, "group": {}, "assist": {}})
        if kind == "assist":
            key = agent_id or f"queue:{group_id}"
            books["assist"][key] = books["assist"].get(key, 0.0) + float(amount)
            continue
        if agent_id:
            books["person"][agent_id] = books["person"].get(agent_id, 0.0) + float(amount)
        books["group"][group_id] = books["group"].get(group_id, 0.0) + float(amount)
    return {
        label: {
            name: _top({k: round(v, 6) for k, v in book.items() if round(v, 6) != 0}, top_n)
            for name, book in books.items()
        }
        for label, books in sorted(policies.items())
    }


def _reassignment_match_share(cursor: Cursor) -> float | None:
    cursor.execute(
        f"SELECT COUNT(*), SUM(CASE WHEN f.source_reassignment_count = h.group_changes "
        f"THEN 1 ELSE 0 END) FROM {table(CASE_FACTS)} f "
        f"JOIN {table('handoff')} h ON h.case_id = f.case_id "
        "WHERE f.source_reassignment_count IS NOT NULL"
    )
    checked, matched = cursor.fetchone()
    return round(int(matched) / int(checked), 6) if checked else None


def ownership_figures(database: ReadModelDatabase, top_n: int | None = 10) -> dict[str, Any]:
    """Every figure of the report; ``top_n`` None lists every holder and pair."""
    with database.transaction() as cursor:
        cursor.execute(f"SELECT COUNT(*), COALESCE(SUM(version), 0) FROM {table('current')}")
        cases, events = (int(v) for v in cursor.fetchone())
        cursor.execute(
            "SELECT COALESCE(SUM(person_changes), 0), COALESCE(SUM(group_changes), 0), "
            "COALESCE(SUM(CASE WHEN person_pingpong_returns > 0 THEN 1 ELSE 0 END), 0), "
            "COALESCE(SUM(person_pingpong_returns), 0), "
            "COALESCE(SUM(CASE WHEN group_pingpong_returns > 0 THEN 1 ELSE 0 END), 0), "
            f"COALESCE(SUM(group_pingpong_returns), 0) FROM {table('handoff')}"
        )
        person, group, pp_cases_p, pp_returns_p, pp_cases_g, pp_returns_g = (
            int(v) for v in cursor.fetchone()
        )
        cursor.execute(f"SELECT last_event_us - opened_us FROM {table('current')}")
        durations = [int(row[0]) for row in cursor.fetchall()]
        cursor.execute(f"SELECT COUNT(*) FROM {table(CASE_FACTS)} WHERE resolutions > 0")
        resolved = int(cursor.fetchone()[0])
        return {
            "cases": cases,
            "events": events,
            "handovers_person": person,
            "handovers_group": group,
            "ping_pong_cases_person": pp_cases_p,
            "ping_pong_returns_person": pp_returns_p,
            "ping_pong_cases_group": pp_cases_g,
            "ping_pong_returns_group": pp_returns_g,
            "changes_per_case_person": _changes(cursor, "person_changes", cases),
            "changes_per_case_group": _changes(cursor, "group_changes", cases),
            "top_pairs_person": _pairs(cursor, "person", top_n),
            "top_pairs_group": _pairs(cursor, "group", top_n),
            "case_duration_s": duration_summary(durations),
            "time_in_hands_person_s": _top(
                {k: _seconds(v) for k, v in time_in_hands_us(cursor, "person").items()}, top_n
            ),
            "time_in_hands_group_s": _top(
                {k: _seconds(v) for k, v in time_in_hands_us(cursor, "group").items()}, top_n
            ),
            "resolved_cases": resolved,
            "resolver_credit_person": _top(_resolvers(cursor, "first_resolver_agent"), top_n),
            "resolver_credit_group": _top(_resolvers(cursor, "first_resolver_group"), top_n),
            "credit_policies": _credit_policies(cursor, top_n),
            "reassignment_count_match_share": _reassignment_match_share(cursor),
        }

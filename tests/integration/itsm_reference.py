"""An independent, plain computation of the ownership figures straight from a log's raw rows.

Written from the definitions in docs/analytics.md and docs/itsm-import.md only: it imports
nothing from ``services`` (its own file readers, its own per-dataset tables, its own state
walk). The tests compare its answers with what the ledger's read models report.
"""

from __future__ import annotations

import csv
import gzip
import itertools
import math
import statistics
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MISSING = {"", "-", "?"}

DATASETS: dict[str, dict[str, Any]] = {
    "bpic13": {
        "case": "case:concept:name",
        "time": "time:timestamp",
        "format": None,
        "status": ["concept:name", "lifecycle:transition"],
        "person": "org:resource",
        "group": "org:group",
        "sequence": None,
        "wait": {
            "Accepted/Wait - User": "customer",
            "Accepted/Wait - Customer": "customer",
            "Accepted/Wait - Vendor": "third party",
            "Accepted/Wait - Implementation": "scheduled",
            "Accepted/Wait": "third party",
        },
        "resolve": {
            "Completed/Resolved",
            "Completed/Closed",
            "Completed/In Call",
            "Completed/Cancelled",
        },
        "reopen": set(),
        "neutral": {"Unmatched/Unmatched"},
        "owner_statuses": None,
        "work_reopens": True,
        "counter": None,
    },
    "helpdesk": {
        "case": "case:concept:name",
        "time": "time:timestamp",
        "format": None,
        "status": ["concept:name"],
        "person": "org:resource",
        "group": "workgroup",
        "sequence": None,
        "wait": {"Wait": "customer"},
        "resolve": {"Resolve ticket", "Closed", "RESOLVED", "INVALID", "DUPLICATE", "VERIFIED"},
        "reopen": set(),
        "neutral": set(),
        "owner_statuses": None,
        "work_reopens": True,
        "counter": None,
    },
    "servicenow": {
        "case": "number",
        "time": "sys_updated_at",
        "format": "%d/%m/%Y %H:%M",
        "status": ["incident_state"],
        "person": "assigned_to",
        "group": "assignment_group",
        "sequence": "int",
        "sequence_column": "sys_mod_count",
        "wait": {
            "Awaiting User Info": "customer",
            "Awaiting Evidence": "customer",
            "Awaiting Vendor": "third party",
            "Awaiting Problem": "third party",
        },
        "resolve": {"Resolved", "Closed"},
        "reopen": set(),
        "neutral": {"-100"},
        "owner_statuses": None,
        "work_reopens": True,
        "counter": "reassignment_count",
    },
    "bpic14": {
        "case": "incident_id",
        "time": "data_stamp",
        "format": "%Y-%m-%d %H:%M:%S",
        "status": ["incident_activity_type"],
        "person": None,
        "group": "assignment_group",
        "sequence": "text",
        "sequence_column": "incident_activity_number",
        "wait": {"Pending vendor": "third party"},
        "resolve": {"Resolved", "Closed"},
        "reopen": {"Reopen"},
        "neutral": set(),
        "owner_statuses": {
            "Open",
            "Assignment",
            "Reassignment",
            "External Vendor Assignment",
            "External Vendor Reassignment",
        },
        "work_reopens": False,
        "counter": None,
    },
}


def raw_rows(path: Path) -> list[dict[str, str]]:
    opener = gzip.open if path.suffix == ".gz" else open
    if ".csv" in path.suffixes:
        with opener(path, "rt", encoding="utf-8", newline="") as f:  # type: ignore[operator]
            return list(csv.DictReader(f))
    with opener(path, "rb") as f:  # type: ignore[operator]
        root = ET.parse(f).getroot()
    rows = []
    for trace in root:
        if not trace.tag.endswith("trace"):
            continue
        case = {"case:" + a.get("key", ""): a.get("value", "") for a in trace if "key" in a.attrib}
        for event in trace:
            if event.tag.endswith("event"):
                row = dict(case)
                row.update(
                    {a.get("key", ""): a.get("value", "") for a in event if "key" in a.attrib}
                )
                rows.append(row)
    return rows


def _micros(text: str, fmt: str | None) -> int:
    when = datetime.fromisoformat(text) if fmt is None else datetime.strptime(text, fmt)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - EPOCH) // timedelta(microseconds=1)


def _runs(names: list[str]) -> list[str]:
    out: list[str] = []
    for name in names:
        if not out or out[-1] != name:
            out.append(name)
    return out


class _CaseWalk:
    """One case's rows in canonical order: its state, ledger events, owners and holders."""

    def __init__(self, d: dict[str, Any]) -> None:
        self.d = d
        self.opened = self.resolved = False
        self.paused: str | None = None
        self.owner = ("", "")
        self.first_resolver: tuple[str, str] | None = None
        self.seen: dict[str, list[str]] = {"person": [], "group": []}
        self.walk: list[tuple[int, str, str]] = []  # (time, person, group holding) after a row
        self.last_counter: str | None = None
        self.events = 0

    def kind(self, status: str) -> str:
        d = self.d
        if status in d["wait"]:
            return "wait"
        if status in d["resolve"]:
            return "resolve"
        if status in d["reopen"]:
            return "reopen"
        return "neutral" if status in d["neutral"] else "work"

    def status_effect(self, kind: str, status: str) -> int:
        if kind == "wait":
            reason = self.d["wait"][status]
            if self.paused == reason:
                return 0
            extra = 2 if self.paused is not None else 1  # resume, then pause for the new reason
            self.paused = reason
            return extra
        if kind == "work" and self.paused is not None:
            self.paused = None
            return 1
        if kind == "resolve":
            self.paused = None
            self.resolved = True
            if self.first_resolver is None:
                self.first_resolver = self.owner
            return 1
        return 0

    def bears(self, person: str, group: str) -> None:
        if person:
            self.seen["person"].append(person)
        if group:
            self.seen["group"].append(group)

    def step(
        self, at: int, _seq: Any, _index: int, status: str, person: str, group: str, counter: Any
    ) -> None:
        kind = self.kind(status)
        names_owner = bool(person or group)
        if not self.opened:
            if not names_owner:
                return  # no owner yet: not imported
            self.opened = True
            self.owner = (person, group)
            self.bears(person, group)
            self.events += 1 + self.status_effect(kind, status)
        elif self.resolved and not (
            kind == "reopen" or (kind in ("work", "wait") and self.d["work_reopens"])
        ):
            self.events += 1  # kept as an activity; nobody holds a resolved case
        else:
            n = 0
            if self.resolved:
                self.resolved = False
                n += 1
            if names_owner:
                self.bears(person, group)
                if (person, group) != self.owner:
                    self.owner = (person, group)
                    n += 1
            n += self.status_effect(kind, status)
            self.events += max(n, 1)
        self.last_counter = counter
        holding = ("", "") if self.resolved else self.owner
        self.walk.append((at, holding[0], holding[1]))


def figures(dataset: str, path: Path) -> dict[str, Any]:
    d = DATASETS[dataset]
    by_case: dict[str, list[tuple[Any, ...]]] = {}
    for index, row in enumerate(raw_rows(path)):
        status = "/".join(row.get(column, "").strip() for column in d["status"])
        person = row.get(d["person"], "").strip() if d["person"] else ""
        group = row.get(d["group"], "").strip() if d["group"] else ""
        person = "" if person in MISSING else person
        group = "" if group in MISSING else group
        if d["owner_statuses"] is not None and status not in d["owner_statuses"]:
            person = group = ""
        if d["sequence"] == "int":
            seq: tuple[Any, ...] = (int(row[d["sequence_column"]]), "")
        elif d["sequence"] == "text":
            value = row[d["sequence_column"]].strip()
            seq = (len(value), value)
        else:
            seq = (0, "")
        counter = row.get(d["counter"], "").strip() if d["counter"] else None
        at = _micros(row[d["time"]].strip(), d["format"])
        by_case.setdefault(row[d["case"]].strip(), []).append(
            (at, seq, index, status, person, group, counter)
        )

    events = 0
    durations: list[int] = []
    person_changes: Counter[int] = Counter()
    group_changes: Counter[int] = Counter()
    pairs = {"person": Counter(), "group": Counter()}  # type: ignore[var-annotated]
    pingpong = {"person": [0, 0], "group": [0, 0]}
    hands = {"person": Counter(), "group": Counter()}  # type: ignore[var-annotated]
    resolvers = {"person": Counter(), "group": Counter()}  # type: ignore[var-annotated]
    resolved_cases = 0
    counters_checked = counters_matched = 0
    cases = 0

    for rows in by_case.values():
        rows.sort(key=lambda r: (r[0], r[1], r[2]))
        case = _CaseWalk(d)
        for row in rows:
            case.step(*row)
        events += case.events
        walk, seen, first_resolver, last_counter = (
            case.walk,
            case.seen,
            case.first_resolver,
            case.last_counter,
        )
        if not walk:
            continue
        cases += 1
        durations.append(walk[-1][0] - walk[0][0])
        for (start, p, g), (end, _, _) in itertools.pairwise(walk):
            if p:
                hands["person"][p] += end - start
            if g:
                hands["group"][g] += end - start
        for level, changes in (("person", person_changes), ("group", group_changes)):
            runs = _runs(seen[level])
            changes[max(len(runs) - 1, 0)] += 1
            for a, b in itertools.pairwise(runs):
                pairs[level][(a, b)] += 1
            returns = sum(1 for k in range(2, len(runs)) if runs[k] == runs[k - 2])
            pingpong[level][0] += 1 if returns else 0
            pingpong[level][1] += returns
        if first_resolver is not None:
            resolved_cases += 1
            if first_resolver[0]:
                resolvers["person"][first_resolver[0]] += 1
            if first_resolver[1]:
                resolvers["group"][first_resolver[1]] += 1
        if last_counter is not None:
            counters_checked += 1
            counters_matched += int(last_counter) == max(len(_runs(seen["group"])) - 1, 0)

    def changes(counts: Counter[int]) -> dict[str, Any]:
        total = sum(k * n for k, n in counts.items())
        return {
            "mean": round(total / cases, 6),
            "distribution": {str(k): counts[k] for k in sorted(counts)},
        }

    def seconds(counts: Counter[str]) -> dict[str, float]:
        return {k: round(v / 1_000_000, 3) for k, v in counts.items() if v > 0}

    ordered = sorted(durations)
    return {
        "cases": cases,
        "events": events,
        "handovers_person": sum(k * n for k, n in person_changes.items()),
        "handovers_group": sum(k * n for k, n in group_changes.items()),
        "ping_pong_cases_person": pingpong["person"][0],
        "ping_pong_returns_person": pingpong["person"][1],
        "ping_pong_cases_group": pingpong["group"][0],
        "ping_pong_returns_group": pingpong["group"][1],
        "changes_per_case_person": changes(person_changes),
        "changes_per_case_group": changes(group_changes),
        "top_pairs_person": [
            [a, b, n] for (a, b), n in sorted(pairs["person"].items(), key=lambda p: (-p[1], p[0]))
        ],
        "top_pairs_group": [
            [a, b, n] for (a, b), n in sorted(pairs["group"].items(), key=lambda p: (-p[1], p[0]))
        ],
        "case_duration_s": {
            "mean": round(sum(ordered) / len(ordered) / 1_000_000, 3),
            "median": round(statistics.median(ordered) / 1_000_000, 3),
            "p90": round(ordered[math.ceil(0.9 * len(ordered)) - 1] / 1_000_000, 3),
        },
        "time_in_hands_person_s": seconds(hands["person"]),
        "time_in_hands_group_s": seconds(hands["group"]),
        "resolved_cases": resolved_cases,
        "resolver_credit_person": dict(resolvers["person"]),
        "resolver_credit_group": dict(resolvers["group"]),
        "reassignment_count_match_share": (
            round(counters_matched / counters_checked, 6) if counters_checked else None
        ),
    }

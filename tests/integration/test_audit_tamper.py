"""Tampering with stored rows in a real PostgreSQL is caught and named precisely.

A few hundred events of realistic stories are written through the command handler and sealed by
the checkpointer. Each test then changes the events table behind the ledger's back — as someone
with database access would — and checks that verification names the break: kind, case, version,
global position, and the expected against the found hash.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
from psycopg import sql

from services.audit.chain import Break, Broken, record_from_row
from services.audit.checkpoints import Checkpointer
from services.audit.service import Auditor, verify_lines
from services.bootstrap import build_auditor, build_store
from services.ledger.domain.chain import GENESIS
from services.ledger.infrastructure.store import EventsourcingStore
from services.settings import Settings
from tests.e2e.processes import ledger_executable
from tests.integration.test_projector_crash import fill, story_commands

pytestmark = pytest.mark.postgres
SEAL_EVERY = 40


@dataclass
class Ledger:
    url: str
    store: EventsourcingStore
    auditor: Auditor
    conn: psycopg.Connection[Any]
    events: sql.Composed

    def rows(self) -> list[dict[str, Any]]:
        """Every stored row, in position order, with its state parsed."""
        statement = sql.SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state FROM {} "
            "ORDER BY notification_id"
        ).format(self.events)
        return [
            {
                "position": r[0],
                "case_id": r[1],
                "version": r[2],
                "topic": r[3],
                "state": json.loads(bytes(r[4])),
            }
            for r in self.conn.execute(statement).fetchall()
        ]

    def set_state(self, position: int, state: dict[str, Any]) -> None:
        self.conn.execute(
            sql.SQL("UPDATE {} SET state = %s WHERE notification_id = %s").format(self.events),
            (json.dumps(state).encode(), position),
        )

    def delete(self, position: int) -> None:
        self.conn.execute(
            sql.SQL("DELETE FROM {} WHERE notification_id = %s").format(self.events), (position,)
        )

    def set_version(self, position: int, version: int) -> None:
        self.conn.execute(
            sql.SQL("UPDATE {} SET originator_version = %s WHERE notification_id = %s").format(
                self.events
            ),
            (version, position),
        )

    def insert(self, row: dict[str, Any], position: int | None = None) -> int:
        columns = ["originator_id", "originator_version", "topic", "state"]
        values: list[Any] = [
            row["case_id"],
            row["version"],
            row["topic"],
            json.dumps(row["state"]).encode(),
        ]
        if position is not None:
            columns.insert(0, "notification_id")
            values.insert(0, position)
        statement = sql.SQL("INSERT INTO {} ({}) VALUES ({}) RETURNING notification_id").format(
            self.events,
            sql.SQL(", ").join(map(sql.Identifier, columns)),
            sql.SQL(", ").join(sql.Placeholder() * len(values)),
        )
        found = self.conn.execute(statement, values).fetchone()
        assert found is not None
        return int(found[0])

    def a_case_with(self, versions: int) -> list[dict[str, Any]]:
        """The rows of a case with at least ``versions`` events, in version order."""
        by_case: dict[str, list[dict[str, Any]]] = {}
        for row in self.rows():
            by_case.setdefault(row["case_id"], []).append(row)
        return next(rows for rows in by_case.values() if len(rows) >= versions)


@pytest.fixture
def ledger(postgres_url: str) -> Iterator[Ledger]:
    store = build_store(Settings(database_url=postgres_url, max_workers=2))
    try:
        fill(store, story_commands(24, per_case=9, seed=77))
        auditor = build_auditor(store)
        sealed = Checkpointer(store, auditor.checkpoints, every=SEAL_EVERY).seal()
        assert sealed and sealed[-1].position == store.max_position()
        schema = parse_qs(urlsplit(postgres_url).query)["schema"][-1]
        server = urlsplit(postgres_url)._replace(query="").geturl()
        with psycopg.connect(server, autocommit=True) as conn:
            yield Ledger(
                postgres_url,
                store,
                auditor,
                conn,
                sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier("ledger_events")),
            )
    finally:
        store.close()


def only(breaks: list[Break], kind: str) -> Break:
    found = [b for b in breaks if b.kind == kind]
    assert len(found) == 1, f"expected one {kind}, got {breaks}"
    return found[0]


def checkpoint_after(position: int) -> int:
    """The position of the first checkpoint at or after ``position`` (they come every 40)."""
    return -(-position // SEAL_EVERY) * SEAL_EVERY


def test_an_untouched_ledger_verifies_clean_as_a_whole_by_range_and_by_case(
    ledger: Ledger,
) -> None:
    head = ledger.store.max_position()
    report = ledger.auditor.verify_range()
    assert report.ok, report.breaks
    assert (report.events, report.cases, report.first_position, report.last_position) == (
        head,
        24,
        1,
        head,
    )
    assert report.checkpoints == checkpoint_after(head) // SEAL_EVERY
    assert ledger.auditor.verify_range(57, 121).ok
    case = ledger.a_case_with(5)
    case_report = ledger.auditor.verify_case(case[0]["case_id"])
    assert case_report.ok
    assert case_report.events == len(case)


def test_an_updated_payload_is_named_with_its_expected_and_found_hash(ledger: Ledger) -> None:
    case = ledger.a_case_with(5)
    target = case[2]
    forged = dict(target["state"], actor="mallory")
    ledger.set_state(target["position"], forged)

    breaks = ledger.auditor.verify_range().breaks
    assert len(breaks) == 1, breaks
    broken = breaks[0]
    assert (broken.kind, broken.case_id, broken.version, broken.position) == (
        Broken.HASH_MISMATCH,
        target["case_id"],
        target["version"],
        target["position"],
    )
    assert broken.found == target["state"]["chain_hash"]
    recomputed = record_from_row(
        target["position"],
        target["case_id"],
        target["version"],
        target["topic"],
        json.dumps(forged).encode(),
    ).computed_hash(case[1]["state"]["chain_hash"])
    assert broken.expected == recomputed != broken.found
    assert ledger.auditor.verify_case(target["case_id"]).breaks == breaks
    # A range that starts right at the tampered event anchors on the stored link before it.
    assert ledger.auditor.verify_range(target["position"], target["position"]).breaks == breaks


def test_a_deleted_row_is_named_by_its_case_version_and_position(ledger: Ledger) -> None:
    case = ledger.a_case_with(5)
    deleted, after = case[2], case[3]
    ledger.delete(deleted["position"])

    report = ledger.auditor.verify_range()
    sequence = only(report.breaks, Broken.VERSION_SEQUENCE)
    assert (sequence.case_id, sequence.version, sequence.position) == (
        deleted["case_id"],
        after["version"],
        after["position"],
    )
    assert (sequence.expected, sequence.found) == (str(deleted["version"]), str(after["version"]))
    link = only(report.breaks, Broken.HASH_MISMATCH)
    assert (link.case_id, link.version, link.found) == (
        deleted["case_id"],
        after["version"],
        after["state"]["chain_hash"],
    )
    gap = only(report.breaks, Broken.POSITION_GAP)
    assert gap.position == deleted["position"] + 1
    assert f"positions {deleted['position']} are missing" in gap.detail
    sealed = only(report.breaks, Broken.CHECKPOINT_MISMATCH)
    assert sealed.position == checkpoint_after(deleted["position"])
    assert {b.kind for b in ledger.auditor.verify_case(deleted["case_id"]).breaks} == {
        Broken.VERSION_SEQUENCE,
        Broken.HASH_MISMATCH,
    }


def test_removing_a_case_s_last_event_is_caught_by_the_global_order(ledger: Ledger) -> None:
    rows = ledger.rows()
    last_of_case = {row["case_id"]: row for row in rows}
    victim = next(r for r in last_of_case.values() if r["position"] < len(rows) - SEAL_EVERY)
    ledger.delete(victim["position"])

    assert ledger.auditor.verify_case(victim["case_id"]).ok  # the case alone cannot tell
    report = ledger.auditor.verify_range()
    assert {b.kind for b in report.breaks} == {Broken.POSITION_GAP, Broken.CHECKPOINT_MISMATCH}
    assert (
        f"positions {victim['position']} are missing"
        in only(report.breaks, Broken.POSITION_GAP).detail
    )
    assert only(report.breaks, Broken.CHECKPOINT_MISMATCH).position == checkpoint_after(
        victim["position"]
    )


def test_two_swapped_versions_are_both_named(ledger: Ledger) -> None:
    case = ledger.a_case_with(5)
    first, second = case[1], case[2]
    ledger.set_version(first["position"], -1)
    ledger.set_version(second["position"], first["version"])
    ledger.set_version(first["position"], second["version"])

    report = ledger.auditor.verify_range()
    mismatched = [b for b in report.breaks if b.kind == Broken.HASH_MISMATCH]
    assert [(b.case_id, b.version, b.position, b.found) for b in mismatched] == [
        (first["case_id"], second["version"], first["position"], first["state"]["chain_hash"]),
        (first["case_id"], first["version"], second["position"], second["state"]["chain_hash"]),
    ]
    assert all(b.expected != b.found for b in mismatched)
    sequence = [b for b in report.breaks if b.kind == Broken.VERSION_SEQUENCE]
    assert [(b.position, b.expected, b.found) for b in sequence] == [
        (first["position"], str(first["version"]), str(second["version"])),
        (second["position"], str(second["version"] + 1), str(first["version"])),
    ]
    # Read by version, the case shows the swapped rows out of the global order.
    by_case = ledger.auditor.verify_case(first["case_id"]).breaks
    assert Broken.POSITION_ORDER in {b.kind for b in by_case}


def test_a_forged_row_is_caught_with_or_without_a_well_computed_hash(ledger: Ledger) -> None:
    rows = ledger.rows()
    last_of_case = {row["case_id"]: row for row in rows}
    case_last = next(r for r in last_of_case.values() if r["position"] < len(rows) - SEAL_EVERY)

    # A naive forger appends an event with a hash copied from the case's last one.
    naive = dict(case_last, version=case_last["version"] + 1)
    naive_position = ledger.insert(naive)
    breaks = ledger.auditor.verify_range().breaks
    assert len(breaks) == 1, breaks
    assert (breaks[0].kind, breaks[0].case_id, breaks[0].version, breaks[0].position) == (
        Broken.HASH_MISMATCH,
        case_last["case_id"],
        case_last["version"] + 1,
        naive_position,
    )
    ledger.delete(naive_position)

    # A forger who knows the algorithm rewrites a case's last event and recomputes its hash, so
    # its case verifies; the checkpoint sealed over it does not.
    state = dict(case_last["state"], actor="mallory")
    previous = next(
        r["state"]["chain_hash"]
        for r in rows
        if r["case_id"] == case_last["case_id"] and r["version"] == case_last["version"] - 1
    )
    state["chain_hash"] = record_from_row(
        case_last["position"],
        case_last["case_id"],
        case_last["version"],
        case_last["topic"],
        json.dumps(state).encode(),
    ).computed_hash(previous)
    ledger.delete(case_last["position"])
    ledger.insert(dict(case_last, state=state), position=case_last["position"])
    assert ledger.auditor.verify_case(case_last["case_id"]).ok
    report = ledger.auditor.verify_range()
    sealed = only(report.breaks, Broken.CHECKPOINT_MISMATCH)
    assert sealed.position == checkpoint_after(case_last["position"])
    assert sealed.expected != sealed.found
    assert len(report.breaks) == 1, report.breaks


def test_events_removed_from_the_end_are_caught_by_the_last_checkpoint(ledger: Ledger) -> None:
    head = ledger.store.max_position()
    ledger.delete(head)
    ledger.delete(head - 1)
    report = ledger.auditor.verify_range()
    truncated = only(report.breaks, Broken.TRUNCATED)
    assert truncated.position == head
    assert truncated.found == f"the ledger ends at position {head - 2}"


def _ledger(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    return subprocess.run(
        [ledger_executable(), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_ledger_verify_exits_non_zero_and_prints_the_break(ledger: Ledger) -> None:
    clean = _ledger("verify", "--database-url", ledger.url)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert ": OK;" in clean.stdout

    target = ledger.a_case_with(4)[3]
    ledger.set_state(target["position"], dict(target["state"], note="edited"))
    broken = _ledger("verify", "--database-url", ledger.url)
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert (
        f"BREAK HASH_MISMATCH case {target['case_id']!r} version {target['version']} "
        f"at position {target['position']}"
    ) in broken.stdout
    assert f"found {target['state']['chain_hash']})" in broken.stdout
    one_case = _ledger("verify", "--database-url", ledger.url, "--case", target["case_id"])
    assert one_case.returncode == 1
    assert _ledger("verify", "--database-url", ledger.url, "--case", "NO-SUCH").returncode == 2


def test_an_export_verifies_offline_and_a_tampered_export_is_caught(
    ledger: Ledger, tmp_path: Path
) -> None:
    export = tmp_path / "export.jsonl"
    done = _ledger(
        "export", "--database-url", ledger.url, "--range", "30..", "--output", str(export)
    )
    assert done.returncode == 0, done.stderr
    lines = export.read_text("utf-8").splitlines()
    head = ledger.store.max_position()
    assert len(lines) == head - 29
    first = json.loads(lines[0])
    assert first["position"] == 30
    assert set(first) >= {"position", "version", "occurred_at", "recorded_at", "payload", "hashes"}
    assert set(first["hashes"]) == {"previous", "chain", "global"}
    offline = _ledger("verify", "--file", str(export))
    assert offline.returncode == 0, offline.stdout
    assert f"{head - 29} events" in offline.stdout

    # Change one owner in one line: its chain hash no longer matches.
    index, line = next(
        (i, json.loads(text))
        for i, text in enumerate(lines)
        if "to_owner" in json.loads(text)["payload"]
    )
    line["payload"]["to_owner"]["agent_id"] = "mallory"
    lines[index] = json.dumps(line)
    export.write_text("\n".join(lines) + "\n", "utf-8")
    tampered = _ledger("verify", "--file", str(export))
    assert tampered.returncode == 1
    assert (
        f"BREAK HASH_MISMATCH case {line['case_id']!r} version {line['version']} "
        f"at position {line['position']}"
    ) in tampered.stdout

    # Drop a line: the next line of the global order no longer follows.
    del lines[index]
    report = verify_lines(lines)
    gap = only(report.breaks, Broken.POSITION_GAP)
    assert gap.position == line["position"] + 1


def test_a_case_export_carries_its_whole_chain_from_genesis(ledger: Ledger) -> None:
    case = ledger.a_case_with(5)
    lines = list(ledger.auditor.export_case(case[0]["case_id"]))
    parsed = [json.loads(text) for text in lines]
    assert [p["version"] for p in parsed] == [r["version"] for r in case]
    assert parsed[0]["hashes"]["previous"] == GENESIS
    assert all(
        later["hashes"]["previous"] == earlier["hashes"]["chain"]
        for earlier, later in pairwise(parsed)
    )
    assert verify_lines(lines).ok


def test_sealing_again_adds_nothing_and_a_second_checkpointer_s_copy_is_ignored(
    ledger: Ledger,
) -> None:
    before = ledger.auditor.checkpoints.all()
    assert Checkpointer(ledger.store, ledger.auditor.checkpoints).seal() == []
    ledger.auditor.checkpoints.add(before[-1])  # what a second projector process would write
    assert ledger.auditor.checkpoints.all() == before

"""Rows → commands: owners, missing-owner tokens, pauses, resolution, reopening, stable ids."""

from __future__ import annotations

import gzip
from pathlib import Path

from services.itsm.mapping import SERVICENOW, ColumnMapping
from services.itsm.plan import (
    NOISE_BEFORE_OWNER,
    NOISE_RESOLVED_OWNER,
    PlanSummary,
    case_commands,
    source_rows,
)
from services.itsm.readers import read_rows
from services.ledger.application import commands as c
from services.ledger.domain.values import Owner, PauseReason


def row(time: str, seq: int, state: str, person: str, group: str, count: int = 0) -> dict[str, str]:
    return {
        "number": "INC1",
        "sys_updated_at": time,
        "sys_mod_count": str(seq),
        "incident_state": state,
        "assigned_to": person,
        "assignment_group": group,
        "reassignment_count": str(count),
        "reopen_count": "0",
    }


def plan(
    rows: list[dict[str, str]], mapping: ColumnMapping = SERVICENOW
) -> tuple[list[c.Command], PlanSummary]:
    summary = PlanSummary()
    source = list(source_rows(rows, mapping, summary))
    return case_commands("INC1", source, mapping, summary), summary


def test_rows_become_the_commands_that_say_what_changed() -> None:
    commands, summary = plan(
        [
            row("1/3/2016 09:00", 0, "New", "?", "?"),  # no owner yet: not imported
            row("1/3/2016 09:05", 1, "New", "?", "Group 1"),  # a group queue, no person
            row("1/3/2016 09:10", 2, "Active", "Resolver 7", "Group 1"),
            row("1/3/2016 09:20", 3, "Awaiting User Info", "Resolver 7", "Group 1"),
            row("1/3/2016 09:30", 4, "Active", "-", "?"),  # names no owner at all: moves nothing
            row("1/3/2016 09:40", 5, "Resolved", "Resolver 8", "Group 2", 1),
            row("1/3/2016 09:50", 6, "Closed", "Resolver 9", "Group 2", 1),  # nobody holds it
            row("2/3/2016 09:00", 7, "Active", "Resolver 8", "Group 2", 1),  # day-first: 2 March
        ]
    )
    assert [(x.kind, x.occurred_at.day if x.occurred_at else 0) for x in commands] == [
        ("Assign", 1),
        ("Transfer", 1),
        ("Pause", 1),
        ("Resume", 1),
        ("Transfer", 1),
        ("Resolve", 1),
        ("RecordActivity", 1),
        ("Reopen", 2),
    ]
    assign, to_person, pause = commands[0], commands[1], commands[2]
    assert isinstance(assign, c.Assign) and assign.owner == Owner("", "Group 1")
    assert isinstance(to_person, c.Transfer) and to_person.to_owner == Owner(
        "Resolver 7", "Group 1"
    )
    assert isinstance(pause, c.Pause) and pause.reason is PauseReason.AWAITING_CUSTOMER
    assert summary.noise == {NOISE_BEFORE_OWNER: 1, NOISE_RESOLVED_OWNER: 1}
    assert "reassignment_count=1" in commands[-1].note
    assert len({x.command_id for x in commands}) == len(commands)


def test_command_ids_follow_the_rows_not_the_file_order() -> None:
    rows = [
        row("1/3/2016 09:00", 0, "New", "A", "G"),
        row("1/3/2016 09:00", 1, "Active", "B", "G"),
        row("1/3/2016 09:30", 2, "Resolved", "B", "G"),
    ]
    forward, _ = plan(rows)
    backward, _ = plan(list(reversed(rows)))
    assert [(x.command_id, x.kind) for x in forward] == [(x.command_id, x.kind) for x in backward]
    assert [x.kind for x in forward] == ["Assign", "Transfer", "Resolve"]  # sequence breaks the tie


def test_the_xes_reader_streams_events_with_their_trace_attributes(tmp_path: Path) -> None:
    xes = (
        '<?xml version="1.0" encoding="UTF-8" ?>\n'
        '<log xmlns="http://www.xes-standard.org/"><global scope="event">'
        '<string key="org:group" value="UNKNOWN"/></global>'
        '<float key="meta" value="1"><float key="nested" value="2"/></float>'
        '<trace><string key="concept:name" value="C1"/>'
        '<event><string key="concept:name" value="Accepted"/>'
        '<string key="org:resource" value="Ann &amp; Bo"/>'
        '<date key="time:timestamp" value="2012-01-01T10:00:00.000+01:00"/>'
        '<list key="tags"><string key="t" value="ignored"/></list></event>'
        '<event><string key="concept:name" value="Completed"/></event></trace>'
        '<trace><string key="concept:name" value="C2"/><event>'
        '<string key="concept:name" value="Queued"/></event></trace></log>\n'
    )
    path = tmp_path / "log.xes.gz"
    path.write_bytes(gzip.compress(xes.encode()))
    rows = list(read_rows(path, "xes"))
    assert rows == [
        {
            "case:concept:name": "C1",
            "concept:name": "Accepted",
            "org:resource": "Ann & Bo",
            "time:timestamp": "2012-01-01T10:00:00.000+01:00",
            "tags": "",
        },
        {"case:concept:name": "C1", "concept:name": "Completed"},
        {"case:concept:name": "C2", "concept:name": "Queued"},
    ]

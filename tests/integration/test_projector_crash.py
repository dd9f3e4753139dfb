"""The projector's crash guarantee: killed at any instant and restarted, it equals a clean rebuild.

A few thousand events of realistic case stories (transfers, swarms, pauses, resolutions,
reopenings, and a sprinkling of late and clock-skewed events) are written straight through the
command handler. The ``ledger project`` process is then SIGKILLed at random moments, restarted each
time, and finally left to catch up; its read models must equal, row for row, a rebuild made from
position 0 into another schema. The same equality is checked in-process on both backends for a
projector that advances in tiny batches while the ledger grows.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
from psycopg import sql

from services.bootstrap import build_store
from services.ledger.application import commands as c
from services.ledger.application.handler import CaseCommandHandler
from services.ledger.application.results import CommandResult
from services.ledger.domain.values import Owner, PauseReason, SwarmRole, Tier, TransferReason
from services.ledger.infrastructure.store import EventsourcingStore
from services.projector import readmodels as rm
from services.projector.casefacts import source_note
from services.projector.credit import POLICIES
from services.projector.database import ReadModelDatabase
from services.projector.projector import TRACKING_NAME, Projector, rebuild
from services.settings import Settings
from tests.e2e.processes import ledger_executable

RM_TABLES = (*rm.PER_CASE_TABLES, "tracking")
AGENTS = [f"agent{i:02d}" for i in range(16)] + ["bot:triage", "renovate[bot]"]
GROUPS = ["desk", "network", "identity", "dba", "platform", "vendor"]
EPOCH = datetime(2025, 1, 6, 8, 0, tzinfo=UTC)
BATCH_COMMANDS = 200


# --- a realistic ledger -------------------------------------------------------------------------


@dataclass
class _Story:
    """What a case looks like so far, so that every generated command is one the rules accept."""

    case_id: str
    rng: random.Random
    at: datetime
    owner: Owner = field(default_factory=lambda: Owner("x"))
    tier: Tier | None = None
    status: str = "open"
    swarm: dict[str, SwarmRole] = field(default_factory=dict)
    sent: int = 0

    def common(self) -> dict[str, Any]:
        self.sent += 1
        if self.rng.random() < 0.08:
            # A late or clock-skewed event: it happened (so it says) before the previous one.
            occurred = self.at - timedelta(minutes=self.rng.randint(1, 45))
        else:
            self.at += timedelta(minutes=self.rng.randint(1, 90), seconds=self.rng.randint(0, 59))
            occurred = self.at
        return {
            "case_id": self.case_id,
            "command_id": f"{self.case_id}/{self.sent}",
            "actor": self.rng.choice(AGENTS),
            "occurred_at": occurred,
        }

    def some_owner(self) -> Owner:
        group = self.rng.choice(GROUPS)
        if self.rng.random() < 0.1:
            return Owner("", group)  # a group queue
        return Owner(self.rng.choice(AGENTS), group)

    def first(self) -> c.Command:
        self.owner = self.some_owner()
        self.tier = self.rng.choice([None, *Tier])
        return c.Assign(**self.common(), owner=self.owner, tier=self.tier)

    def next(self) -> c.Command | None:
        rng = self.rng
        if self.status == "resolved":
            if rng.random() < 0.3:
                return None
            self.status = "open"
            return c.Reopen(**self.common(), reason="customer came back")
        outsiders = [a for a in AGENTS if a != self.owner.agent_id and a not in self.swarm]
        choices = {
            "transfer": 3.0 if self.status == "open" else 1.0,
            "join": 2.0 if outsiders else 0.0,
            "leave": 1.0 if self.swarm else 0.0,
            "pause": 1.5 if self.status == "open" else 0.0,
            "resume": 3.0 if self.status == "paused" else 0.0,
            "resolve": 1.5,
        }
        action = rng.choices(list(choices), weights=list(choices.values()))[0]
        if action == "transfer":
            to = self.some_owner()
            while to == self.owner:
                to = self.some_owner()
            tier = rng.choice([None, *Tier])
            self.swarm.pop(to.agent_id, None)  # a member taking over leaves the swarm
            self.owner, self.tier = to, tier if tier is not None else self.tier
            return c.Transfer(
                **self.common(),
                to_owner=to,
                reason=rng.choice(list(TransferReason)),
                tier=tier,
                warm=rng.random() < 0.4,
                # Some carry the source system's own counter (casefacts), late ones included.
                note=source_note([("reassignment_count", str(self.sent))]) if self.sent % 2 else "",
            )
        if action == "join":
            agent = rng.choice(outsiders)
            self.swarm[agent] = rng.choice(list(SwarmRole))
            return c.JoinSwarm(
                **self.common(), agent_id=agent, group_id=rng.choice(GROUPS), role=self.swarm[agent]
            )
        if action == "leave":
            agent = rng.choice(sorted(self.swarm))
            del self.swarm[agent]
            return c.LeaveSwarm(**self.common(), agent_id=agent)
        if action == "pause":
            self.status = "paused"
            return c.Pause(**self.common(), reason=rng.choice(list(PauseReason)))
        if action == "resume":
            self.status = "open"
            return c.Resume(**self.common())
        self.status = "resolved"
        self.swarm.clear()
        return c.Resolve(**self.common(), resolution_code="fixed")


def story_commands(cases: int, per_case: int, seed: int) -> list[c.Command]:
    """``cases`` stories of about ``per_case`` commands, interleaved as a busy desk would send them."""
    rng = random.Random(seed)
    pending: list[list[c.Command]] = []
    for n in range(cases):
        story = _Story(f"CASE-{n:04d}", random.Random(rng.random()), EPOCH + timedelta(hours=n))
        commands = [story.first()]
        while len(commands) < per_case and (command := story.next()) is not None:
            commands.append(command)
        pending.append(commands[::-1])
    interleaved: list[c.Command] = []
    while pending:
        i = rng.randrange(len(pending))
        interleaved.append(pending[i].pop())
        if not pending[i]:
            pending.pop(i)
    return interleaved


def fill(store: EventsourcingStore, commands: list[c.Command]) -> int:
    """Write ``commands`` in batches; every one must be accepted. Returns the events recorded."""
    handler = CaseCommandHandler(store, Settings().limits())
    recorded = 0
    for start in range(0, len(commands), BATCH_COMMANDS):
        outcomes = handler.execute_batch(commands[start : start + BATCH_COMMANDS])
        refused = [o for o in outcomes if not isinstance(o, CommandResult)]
        assert not refused, f"the generator sent commands the rules refuse: {refused[:3]}"
        recorded += sum(o.events_recorded for o in outcomes if isinstance(o, CommandResult))
    return recorded


# --- reading the read models --------------------------------------------------------------------


def snapshot(database: ReadModelDatabase) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every read-model table, sorted, so two projections compare as values."""
    contents = {}
    with database.transaction() as cursor:
        for name in RM_TABLES:
            cursor.execute(f"SELECT * FROM {rm.table(name)}")
            contents[name] = sorted((tuple(row) for row in cursor.fetchall()), key=repr)
    return contents


def assert_same_contents(
    projected: dict[str, list[tuple[Any, ...]]], rebuilt: dict[str, list[tuple[Any, ...]]]
) -> None:
    for name in RM_TABLES:
        assert len(projected[name]) == len(rebuilt[name]), f"rm_{name}: row counts differ"
        missing = [row for row in rebuilt[name] if row not in projected[name]][:3]
        extra = [row for row in projected[name] if row not in rebuilt[name]][:3]
        assert projected[name] == rebuilt[name], (
            f"rm_{name} differs from the rebuild; missing {missing}, unexpected {extra}"
        )


def assert_realistic(contents: dict[str, list[tuple[Any, ...]]], cases: int, head: int) -> None:
    """The projection covers every case and exercised what the test is about."""
    assert len(contents["current"]) == cases
    assert contents["tracking"] == [(TRACKING_NAME, head)]
    statuses = {row[3] for row in contents["current"]}
    assert statuses == {"open", "paused", "resolved"}
    kinds = {row[6] for row in contents["credit"]}
    assert {"credit", "assist", "reversal"} <= kinds
    assert any(row[5] for row in contents["pause"]), "no clock-skewed pause was clamped"
    assert contents["swarm"] and contents["handover"]


# --- PostgreSQL: kill -9 the projector process, restart it, compare with a rebuild --------------


def _schema_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["schema"][-1]


def _without_query(url: str) -> str:
    return urlsplit(url)._replace(query="").geturl()


def tracked_position(server_url: str, schema: str) -> int:
    """The read models' committed position (0 before the projector made its tables)."""
    statement = sql.SQL("SELECT position FROM {}.rm_tracking WHERE name = %s").format(
        sql.Identifier(schema)
    )
    with psycopg.connect(server_url, autocommit=True) as conn:
        try:
            row = conn.execute(statement, (TRACKING_NAME,)).fetchone()
        except (psycopg.errors.UndefinedTable, psycopg.errors.InvalidSchemaName):
            return 0
    return int(row[0]) if row else 0


def start_project(
    ledger_url: str,
    readmodel_url: str,
    log_path: Path,
    *extra: str,
    settings: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env["LEDGER_PROJECTOR_BATCH_SIZE"] = "50"
    env.update(settings or {})
    command = [
        ledger_executable(),
        "project",
        "--database-url",
        ledger_url,
        "--readmodel-url",
        readmodel_url,
        *extra,
    ]
    with log_path.open("ab") as log:
        return subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )


@pytest.fixture
def children() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Child processes the test starts; any still running at the end is killed."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for child in started:
        if child.poll() is None:
            child.kill()
            child.wait(10)


@pytest.mark.postgres
def test_a_projector_killed_at_random_moments_ends_equal_to_a_clean_rebuild(
    postgres_url: str, tmp_path: Path, children: list[subprocess.Popen[bytes]]
) -> None:
    cases = 300
    store = build_store(Settings(database_url=postgres_url))
    try:
        recorded = fill(store, story_commands(cases, per_case=10, seed=20250106))
        head = store.max_position()
    finally:
        store.close()
    assert head == recorded and head > 2000

    server = _without_query(postgres_url)
    ledger_schema = _schema_of(postgres_url)
    live_schema, rebuilt_schema = f"{ledger_schema}_rm_live", f"{ledger_schema}_rm_rebuilt"
    live_url = f"{server}?schema={live_schema}"
    log_path = tmp_path / "project.log"
    rng = random.Random()

    # Kill -9 at random moments: some soon after the start (maybe while it makes its tables),
    # others once it is visibly projecting. Go on until a kill has landed mid-way.
    killed_at: list[int] = []
    for round_ in range(12):
        before = tracked_position(server, live_schema)
        if before == head or (len(killed_at) >= 4 and any(0 < p < head for p in killed_at)):
            break
        child = start_project(postgres_url, live_url, log_path)
        children.append(child)
        if round_ % 2:
            deadline = time.monotonic() + 30
            while tracked_position(server, live_schema) == before:
                assert child.poll() is None, log_path.read_text(errors="replace")
                assert time.monotonic() < deadline, "the projector made no progress"
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 0.4))
        else:
            time.sleep(rng.uniform(0.2, 1.0))
        assert child.poll() is None, f"projector exited early:\n{log_path.read_text('utf-8')}"
        child.send_signal(signal.SIGKILL)
        assert child.wait(10) == -signal.SIGKILL
        position = tracked_position(server, live_schema)
        assert before <= position <= head, "the tracking position went backwards or too far"
        killed_at.append(position)
    assert any(0 < p < head for p in killed_at), f"no kill landed mid-way: {killed_at}"

    # The last restart catches up, then stops cleanly on SIGTERM.
    child = start_project(postgres_url, live_url, log_path)
    children.append(child)
    deadline = time.monotonic() + 180
    while (position := tracked_position(server, live_schema)) < head:
        assert child.poll() is None, log_path.read_text(errors="replace")
        assert time.monotonic() < deadline, f"projector stuck at {position} of {head}"
        time.sleep(0.05)
    assert position == head
    child.send_signal(signal.SIGTERM)
    assert child.wait(30) == 0, log_path.read_text(errors="replace")

    rebuilt_url = f"{server}?schema={rebuilt_schema}"
    done = subprocess.run(
        [
            ledger_executable(),
            "project",
            "--database-url",
            postgres_url,
            "--readmodel-url",
            rebuilt_url,
            "--rebuild",
        ],
        capture_output=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")},
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert f"rebuilt read models from {head} events".encode() in done.stdout

    live, rebuilt = ReadModelDatabase(live_url), ReadModelDatabase(rebuilt_url)
    try:
        projected, fresh = snapshot(live), snapshot(rebuilt)
    finally:
        live.close()
        rebuilt.close()
    assert_realistic(fresh, cases, head)
    assert_same_contents(projected, fresh)


# --- both backends, in-process: tiny incremental batches equal a rebuild ------------------------


def _readmodel_urls(database_url: str, tmp_path: Path) -> tuple[str, str]:
    if database_url.startswith("sqlite"):
        return (
            f"sqlite:///{tmp_path}/rm_incremental.sqlite",
            f"sqlite:///{tmp_path}/rm_rebuilt.sqlite",
        )
    server, schema = _without_query(database_url), _schema_of(database_url)
    return f"{server}?schema={schema}_rm_incremental", f"{server}?schema={schema}_rm_rebuilt"


def test_projecting_in_tiny_batches_while_the_ledger_grows_equals_a_rebuild(
    database_url: str, tmp_path: Path
) -> None:
    cases = 60
    commands = story_commands(cases, per_case=9, seed=7)
    incremental_url, rebuilt_url = _readmodel_urls(database_url, tmp_path)
    store = build_store(Settings(database_url=database_url))
    incremental, rebuilt = ReadModelDatabase(incremental_url), ReadModelDatabase(rebuilt_url)
    try:
        projector = Projector(store, incremental, list(POLICIES.values()), batch_size=7)
        thirds = len(commands) // 3
        # First third: projected as it is written, so case histories span many batches.
        for start in range(0, thirds, 25):
            fill(store, commands[start : min(start + 25, thirds)])
            projector.catch_up()
        # Second third: written at once, projected by a projector that stops part-way...
        fill(store, commands[thirds : 2 * thirds])
        middle = projector.position + (store.max_position() - projector.position) // 2
        projector.catch_up(stop_at=middle)
        assert projector.position == middle
        # ...and finished by a fresh one (a restart: empty cache, position from the tracking row).
        fill(store, commands[2 * thirds :])
        restarted = Projector(store, incremental, list(POLICIES.values()), batch_size=7)
        assert restarted.position == middle
        restarted.catch_up()
        head = store.max_position()
        assert restarted.position == head

        assert rebuild(store, rebuilt, list(POLICIES.values())) == head
        projected, fresh = snapshot(incremental), snapshot(rebuilt)
    finally:
        incremental.close()
        rebuilt.close()
        store.close()
    assert_realistic(fresh, cases, head)
    assert_same_contents(projected, fresh)

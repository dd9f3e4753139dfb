"""An import on PostgreSQL is followed by a projector in a process of its own: it brings the read
models current, and a projector process that dies or cannot start is reported, never waited on."""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime

import pytest

from services.composition import build_store
from services.import_projector import ProjectorFailed, ProjectorProcess
from services.ledger.application import commands as c
from services.ledger.application.handler import CaseCommandHandler
from services.ledger.application.results import CommandResult
from services.ledger.domain.values import Owner
from services.projector import readmodels as rm
from services.projector.database import ReadModelDatabase
from services.projector.projector import TRACKING_NAME
from services.settings import Settings


def assign(case_id: str) -> c.Assign:
    return c.Assign(
        command_id=f"assign:{case_id}",
        case_id=case_id,
        actor="test",
        occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
        owner=Owner("ann", "g1"),
    )


def test_the_projector_process_brings_the_read_models_to_a_position(postgres_url: str) -> None:
    settings = Settings(database_url=postgres_url)
    store = build_store(settings)
    follower = ProjectorProcess(settings)
    try:
        outcomes = CaseCommandHandler(store, settings.limits()).execute_import(
            [assign(f"C{i}") for i in range(5)]
        )
        last = max(x.position for x in outcomes if isinstance(x, CommandResult))
        assert follower.wait_for_position(last, timeout=120)
        assert not follower.wait_for_position(last + 1, timeout=0.1)  # nothing more was written
    finally:
        follower.stop()
        store.close()
    with pytest.raises(ProcessLookupError):  # stopped and reaped
        os.kill(follower.pid, 0)
    readmodels = ReadModelDatabase(settings.resolved_readmodel_url())
    try:
        with readmodels.transaction() as cursor:
            assert rm.read_position(cursor, TRACKING_NAME) == last  # committed, not just seen
            cursor.execute(f"SELECT count(*) FROM {rm.table('current')}")
            assert cursor.fetchone() == (5,)
    finally:
        readmodels.close()


def test_a_projector_process_that_dies_is_reported(postgres_url: str) -> None:
    settings = Settings(database_url=postgres_url)
    store = build_store(settings)  # makes the ledger's tables, as the import does first
    follower = ProjectorProcess(settings)
    try:
        os.kill(follower.pid, signal.SIGKILL)
        with pytest.raises(ProjectorFailed, match="exited"):
            follower.wait_for_position(1, timeout=3600)
    finally:
        follower.stop()
        store.close()


def test_a_projector_process_that_cannot_start_says_why(postgres_url: str) -> None:
    settings = Settings(
        database_url=postgres_url, readmodel_url="postgresql://postgres@127.0.0.1:1/nowhere"
    )
    store = build_store(settings)
    follower = ProjectorProcess(settings)
    try:
        with pytest.raises(ProjectorFailed, match="Traceback"):
            follower.wait_for_position(1, timeout=3600)
    finally:
        follower.stop()
        store.close()

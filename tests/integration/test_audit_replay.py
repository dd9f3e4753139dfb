"""Replay as of a position or a moment equals a fresh projector stopped there, and leaves the live
read models alone."""

from __future__ import annotations

import os
import subprocess
from datetime import datetime

from services.audit.chain import plain_state
from services.audit.replay import position_as_of, replay_url
from services.bootstrap import build_store
from services.projector.credit import POLICIES
from services.projector.database import ReadModelDatabase
from services.projector.projector import Projector
from services.settings import Settings
from tests.e2e.processes import ledger_executable
from tests.integration.test_projector_crash import (
    assert_same_contents,
    fill,
    snapshot,
    story_commands,
)


def _replay(database_url: str, *until: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    return subprocess.run(
        [ledger_executable(), "replay", "--database-url", database_url, *until],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def test_replay_at_a_position_or_a_moment_equals_a_fresh_projector_stopped_there(
    database_url: str,
) -> None:
    settings = Settings(database_url=database_url, max_workers=2)
    store = build_store(settings)
    live = ReadModelDatabase(settings.resolved_readmodel_url())
    try:
        fill(store, story_commands(40, per_case=9, seed=11))
        head = store.max_position()
        middle = head // 2 + 3
        Projector(store, live, list(POLICIES.values()), batch_size=50).catch_up()
        live_before = snapshot(live)

        done = _replay(database_url, "--position", str(middle))
        assert done.returncode == 0, done.stderr
        target_url = replay_url(settings.resolved_readmodel_url(), middle)
        assert f"replayed positions 1..{middle} into {target_url}" in done.stdout

        stopped_url = (
            replay_url(settings.resolved_readmodel_url(), 0)
            .replace("replay_0", "stopped")
            .replace("replay-0", "stopped")
        )
        stopped = ReadModelDatabase(stopped_url)
        replayed = ReadModelDatabase(target_url)
        try:
            fresh = Projector(store, stopped, list(POLICIES.values()), batch_size=13)
            fresh.catch_up(stop_at=middle)
            assert fresh.position == middle
            at_middle = snapshot(stopped)
            assert at_middle["tracking"] == [("readmodels", middle)]
            assert at_middle["current"] != live_before["current"]
            assert_same_contents(snapshot(replayed), at_middle)
        finally:
            stopped.close()
            replayed.close()
        assert snapshot(live) == live_before, "the replay touched the live read models"
        assert live_before["tracking"] == [("readmodels", head)]

        # As of the moment event `middle` was recorded: the same prefix.
        row = store.raw_events(middle - 1, 1)[0]
        moment = datetime.fromisoformat(plain_state(row.state)["timestamp"])
        assert position_as_of(store, moment) == middle
        as_of = _replay(database_url, "--as-of", moment.isoformat(), "--owner-of", "CASE-0001")
        assert as_of.returncode == 0, as_of.stderr
        assert f"replayed positions 1..{middle} into {target_url}" in as_of.stdout
        assert "owner of CASE-0001 at " in as_of.stdout
    finally:
        live.close()
        store.close()

"""A realistic mix of ownership commands for benchmarks: escalations, ping-pong, swarms, pauses.

Deterministic for a given seed. About 8 events per case: most cases are assigned, handed on once
or twice (sometimes back and forth), get an expert in their swarm, wait for the customer, and are
resolved; one in ten is reopened and resolved again.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from services.ledger.application import commands as c
from services.ledger.domain.values import Owner, PauseReason, SwarmRole, Tier, TransferReason

GROUPS = [f"group-{i:02d}" for i in range(30)]
TIERS = [Tier.L1, Tier.L2, Tier.L3]
EPOCH = datetime(2025, 1, 1, tzinfo=UTC)


def case_commands(case_no: int, rng: random.Random, prefix: str = "B") -> list[c.Command]:
    case_id = f"{prefix}-{case_no:08d}"
    step = 0
    t = EPOCH + timedelta(minutes=case_no)

    def common() -> dict[str, object]:
        nonlocal step, t
        step += 1
        t += timedelta(minutes=rng.randint(1, 240))
        return {
            "case_id": case_id,
            "command_id": f"{case_id}/{step}",
            "actor": "bench",
            "occurred_at": t,
        }

    def someone(tier_index: int) -> Owner:
        group = GROUPS[tier_index * 10 + rng.randrange(10)]
        return Owner(f"agent-{rng.randrange(400):03d}", group)

    owners = [someone(0)]
    commands: list[c.Command] = [c.Assign(**common(), owner=owners[0], tier=Tier.L1)]  # type: ignore[arg-type]
    for hop in range(rng.choice([0, 1, 1, 2, 2, 3])):
        if hop >= 1 and rng.random() < 0.3:
            target = owners[-2] if len(owners) > 1 else someone(0)  # ping-pong
        else:
            target = someone(min(hop + 1, 2))
        owners.append(target)
        commands.append(
            c.Transfer(
                **common(),  # type: ignore[arg-type]
                to_owner=target,
                reason=TransferReason.ESCALATION,
                tier=TIERS[min(hop + 1, 2)],
                warm=rng.random() < 0.6,
                note="handoff",
            )
        )
    if rng.random() < 0.5:
        expert = f"expert-{rng.randrange(50):02d}"
        commands.append(
            c.JoinSwarm(**common(), agent_id=expert, group_id=GROUPS[25], role=SwarmRole.CONSULTANT)  # type: ignore[arg-type]
        )
        if rng.random() < 0.5:
            commands.append(c.LeaveSwarm(**common(), agent_id=expert))  # type: ignore[arg-type]
    if rng.random() < 0.6:
        commands.append(c.Pause(**common(), reason=PauseReason.AWAITING_CUSTOMER))  # type: ignore[arg-type]
        commands.append(c.Resume(**common()))  # type: ignore[arg-type]
    commands.append(c.Resolve(**common(), resolution_code="fixed"))  # type: ignore[arg-type]
    if rng.random() < 0.1:
        commands.append(c.Reopen(**common(), reason="still broken"))  # type: ignore[arg-type]
        commands.append(c.Resolve(**common(), resolution_code="fixed"))  # type: ignore[arg-type]
    return commands


def interleaved_batches(
    cases: int, batch_size: int, seed: int = 7, prefix: str = "B", open_cases: int = 200
) -> Iterator[list[c.Command]]:
    """Commands of ``cases`` cases, interleaved across ``open_cases`` cases at a time."""
    rng = random.Random(seed)
    pending: list[list[c.Command]] = []
    next_case = 0
    batch: list[c.Command] = []
    while next_case < cases or pending:
        while len(pending) < open_cases and next_case < cases:
            pending.append(case_commands(next_case, rng, prefix))
            next_case += 1
        index = rng.randrange(len(pending))
        batch.append(pending[index].pop(0))
        if not pending[index]:
            pending.pop(index)
        if len(batch) >= batch_size:
            yield batch
            batch = []
    if batch:
        yield batch

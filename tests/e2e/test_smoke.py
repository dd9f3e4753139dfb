from __future__ import annotations

from ownership.v1 import ledger_pb2 as pb
from ownership.v1 import ledger_pb2_grpc
from services.cli import play_demo


def test_the_demo_story_is_recorded_in_order(stub: ledger_pb2_grpc.LedgerServiceStub) -> None:
    history = play_demo(stub, "CASE-DEMO")
    kinds = [event.WhichOneof("payload") for event in history]
    assert kinds == [
        "assigned",
        "transferred",
        "swarm_joined",
        "paused",
        "resumed",
        "swarm_left",
        "resolved",
    ]
    assert [event.version for event in history] == list(range(1, 8))
    positions = [event.position for event in history]
    assert positions == sorted(positions) and len(set(positions)) == 7
    transfer = history[1].transferred
    assert transfer.warm and transfer.to_tier == pb.TIER_L2 and transfer.HasField("eta")
    assert history[5].swarm_left.cause == pb.SWARM_EXIT_CASE_RESOLVED

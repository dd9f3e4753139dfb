"""What the end-to-end tests send over gRPC and read back: requests, refusals and error details."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from ownership.v1 import ledger_pb2 as pb
from ownership.v1 import ledger_pb2_grpc

ALICE = pb.Owner(agent_id="alice", group_id="service-desk")
BOB = pb.Owner(agent_id="bob", group_id="identity-l2")

# The field of each request kind in a BatchCommand, and the single-command RPC of each field.
FIELD_OF = {
    pb.AssignRequest: "assign",
    pb.TransferRequest: "transfer",
    pb.JoinSwarmRequest: "join_swarm",
    pb.LeaveSwarmRequest: "leave_swarm",
    pb.PauseRequest: "pause",
    pb.ResumeRequest: "resume",
    pb.ResolveRequest: "resolve",
    pb.ReopenRequest: "reopen",
}
RPC_OF = {
    "assign": "Assign",
    "transfer": "Transfer",
    "join_swarm": "JoinSwarm",
    "leave_swarm": "LeaveSwarm",
    "pause": "Pause",
    "resume": "Resume",
    "resolve": "Resolve",
    "reopen": "Reopen",
}


# --- requests -----------------------------------------------------------------------------------


def ts(moment: datetime) -> Timestamp:
    """``moment`` as a google.protobuf.Timestamp."""
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def request(kind: type[Message], case_id: str, command_id: str, **fields: Any) -> Any:
    """A ``kind`` request on ``case_id`` sent by actor "tester"; ``fields`` may override any field."""
    return kind(**({"case_id": case_id, "command_id": command_id, "actor": "tester"} | fields))


def assign(case_id: str, command_id: str, owner: pb.Owner = ALICE, **fields: Any) -> Any:
    """An AssignRequest (see ``request``), to ALICE unless told otherwise."""
    return request(pb.AssignRequest, case_id, command_id, owner=owner, **fields)


def transfer(case_id: str, command_id: str, to_owner: pb.Owner, **fields: Any) -> Any:
    """A TransferRequest (see ``request``), for escalation unless another reason is given."""
    fields.setdefault("reason", pb.TRANSFER_REASON_ESCALATION)
    return request(pb.TransferRequest, case_id, command_id, to_owner=to_owner, **fields)


# --- answers ------------------------------------------------------------------------------------


def refusal(call: Callable[..., Any], req: Any, **kwargs: Any) -> grpc.RpcError:
    """The gRPC error ``call(req, **kwargs)`` fails with (it must fail)."""
    with pytest.raises(grpc.RpcError) as caught:
        call(req, **kwargs)
    return caught.value


def unpack(details: Any, kind: type[Message]) -> list[Any]:
    """The messages of type ``kind`` among packed google.protobuf.Any ``details``, in order."""
    found = []
    for detail in details:
        if detail.Is(kind.DESCRIPTOR):
            message = kind()
            detail.Unpack(message)
            found.append(message)
    return found


def details(error: grpc.RpcError, kind: type[Message]) -> list[Any]:
    """The details of type ``kind`` in the google.rpc.Status the error must carry."""
    status = rpc_status.from_call(error)
    assert status is not None, "the error carries no google.rpc.Status"
    return unpack(status.details, kind)


def error_info(error: grpc.RpcError) -> error_details_pb2.ErrorInfo:
    """The first google.rpc.ErrorInfo the error carries (it must carry one)."""
    infos = details(error, error_details_pb2.ErrorInfo)
    if not infos:
        raise AssertionError(f"no ErrorInfo in {rpc_status.from_call(error)}")
    info: error_details_pb2.ErrorInfo = infos[0]
    return info


def answer(result: pb.AppendResult) -> tuple[str, str, int, int, int]:
    """Everything of an answer except ``replayed``."""
    return (
        result.case_id,
        result.command_id,
        result.version,
        result.position,
        result.events_recorded,
    )


def all_events(stub: ledger_pb2_grpc.LedgerServiceStub) -> list[pb.Event]:
    """The whole global order, read page by page with ReadAll."""
    events: list[pb.Event] = []
    while True:
        page = stub.ReadAll(pb.ReadAllRequest(after_position=events[-1].position if events else 0))
        if not page.events:
            return events
        events.extend(page.events)

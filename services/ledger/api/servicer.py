"""LedgerService: each RPC is parse → command → handler → reply."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import grpc
from grpc_status import rpc_status

from ownership.v1 import ledger_pb2 as pb
from ownership.v1 import ledger_pb2_grpc
from services.ledger.api import parsing, rendering
from services.ledger.api.status import status_for
from services.ledger.application import commands as c
from services.ledger.application.errors import ApplicationError, InvalidCommand
from services.ledger.application.group_commit import GroupCommitWriter
from services.ledger.application.handler import CaseCommandHandler
from services.ledger.application.reads import LedgerReader
from services.ledger.application.results import CommandResult
from services.ledger.application.validation import Limits
from services.ledger.domain.errors import DomainError
from services.observability.tracing import current_trace_parent

Expected = (DomainError, ApplicationError)


def abort(context: grpc.ServicerContext, error: Exception) -> NoReturn:
    context.abort_with_status(rpc_status.to_status(status_for(error)))
    raise AssertionError("abort_with_status returns only by raising")


@contextmanager
def errors_as_status(context: grpc.ServicerContext) -> Iterator[None]:
    """Every error leaves as a status from the one table; a bug becomes a logged INTERNAL."""
    try:
        yield
    except Exception as error:
        if isinstance(error, grpc.RpcError):
            raise  # abort() has already set the status
        abort(context, error)


# gRPC reports "no deadline" as an enormous remaining time rather than None.
NO_DEADLINE = 365 * 86_400.0


def remaining_seconds(context: grpc.ServicerContext) -> float | None:
    """Seconds left before the caller's deadline; None when the caller set none."""
    remaining = context.time_remaining()
    return None if remaining is None or remaining >= NO_DEADLINE else float(remaining)


def deadline_of(context: grpc.ServicerContext) -> float | None:
    remaining = remaining_seconds(context)
    return None if remaining is None else time.monotonic() + remaining


def traced(commands: list[c.Command]) -> list[c.Command]:
    """The commands with the current trace context, which their events will carry."""
    trace_parent = current_trace_parent()
    if trace_parent is None:
        return commands
    return [dataclasses.replace(command, trace_parent=trace_parent) for command in commands]


def _with_field_paths(
    outcome: CommandResult | Exception,
    item: c.Command | InvalidCommand,
    wire: pb.BatchCommand,
    index: int,
) -> CommandResult | Exception:
    """Name fields by their place in the batch (``commands[3].transfer.note``), as parsing does."""
    if isinstance(outcome, InvalidCommand) and outcome is not item:
        return parsing.prefixed(outcome, f"commands[{index}].{wire.WhichOneof('command')}")
    return outcome


class ImportTally:
    """Counts of an import, and the error of each refused command by its place in the stream."""

    def __init__(self) -> None:
        self.response = pb.ImportEventsResponse()

    def add(self, index: int, wire: pb.BatchCommand, outcome: CommandResult | Exception) -> None:
        r = self.response
        if isinstance(outcome, CommandResult):
            if outcome.replayed:
                r.replayed += 1
            else:
                r.accepted += 1
                r.events_recorded += outcome.events_recorded
            r.last_position = max(r.last_position, outcome.position)
            return
        r.refused += 1
        kind = wire.WhichOneof("command")
        request = getattr(wire, kind) if kind else None
        r.refusals.add(
            index=index,
            case_id=request.case_id if request is not None else "",
            command_id=request.command_id if request is not None else "",
            error=status_for(outcome),
        )


class LedgerServicer(ledger_pb2_grpc.LedgerServiceServicer):  # type: ignore[misc]
    """Single commands go through group commit; a batch is already one transaction."""

    def __init__(
        self,
        handler: CaseCommandHandler,
        writer: GroupCommitWriter,
        reader: LedgerReader,
        import_batch: int = 2000,
        after_import_batch: Callable[[], None] = lambda: None,
    ) -> None:
        self._handler = handler
        self._writer = writer
        self._reader = reader
        self._import_batch = import_batch
        # Called once each import batch is answered (the composition paces the collector).
        self._after_import_batch = after_import_batch

    def _execute(
        self,
        parse: Callable[[Any, Limits], c.Command],
        request: Any,
        context: grpc.ServicerContext,
    ) -> pb.AppendResult:
        with errors_as_status(context):
            (command,) = traced([parse(request, self._handler.limits)])
            result = self._writer.submit(command, deadline_of(context))
            return rendering.append_result(result)

    def Assign(self, request: pb.AssignRequest, context: grpc.ServicerContext) -> pb.AssignResponse:
        return pb.AssignResponse(result=self._execute(parsing.assign, request, context))

    def Transfer(
        self, request: pb.TransferRequest, context: grpc.ServicerContext
    ) -> pb.TransferResponse:
        return pb.TransferResponse(result=self._execute(parsing.transfer, request, context))

    def JoinSwarm(
        self, request: pb.JoinSwarmRequest, context: grpc.ServicerContext
    ) -> pb.JoinSwarmResponse:
        return pb.JoinSwarmResponse(result=self._execute(parsing.join_swarm, request, context))

    def LeaveSwarm(
        self, request: pb.LeaveSwarmRequest, context: grpc.ServicerContext
    ) -> pb.LeaveSwarmResponse:
        return pb.LeaveSwarmResponse(result=self._execute(parsing.leave_swarm, request, context))

    def Pause(self, request: pb.PauseRequest, context: grpc.ServicerContext) -> pb.PauseResponse:
        return pb.PauseResponse(result=self._execute(parsing.pause, request, context))

    def Resume(self, request: pb.ResumeRequest, context: grpc.ServicerContext) -> pb.ResumeResponse:
        return pb.ResumeResponse(result=self._execute(parsing.resume, request, context))

    def Resolve(
        self, request: pb.ResolveRequest, context: grpc.ServicerContext
    ) -> pb.ResolveResponse:
        return pb.ResolveResponse(result=self._execute(parsing.resolve, request, context))

    def Reopen(self, request: pb.ReopenRequest, context: grpc.ServicerContext) -> pb.ReopenResponse:
        return pb.ReopenResponse(result=self._execute(parsing.reopen, request, context))

    def RecordActivity(
        self, request: pb.RecordActivityRequest, context: grpc.ServicerContext
    ) -> pb.RecordActivityResponse:
        return pb.RecordActivityResponse(
            result=self._execute(parsing.record_activity, request, context)
        )

    def CorrectOccurrence(
        self, request: pb.CorrectOccurrenceRequest, context: grpc.ServicerContext
    ) -> pb.CorrectOccurrenceResponse:
        return pb.CorrectOccurrenceResponse(
            result=self._execute(parsing.correct_occurrence, request, context)
        )

    def ExecuteBatch(
        self, request: pb.ExecuteBatchRequest, context: grpc.ServicerContext
    ) -> pb.ExecuteBatchResponse:
        with errors_as_status(context):
            self._handler.check_batch_size(len(request.commands))
        limits = self._handler.limits
        parsed = [
            parsing.batch_command(command, i, limits) for i, command in enumerate(request.commands)
        ]
        commands = traced([p for p in parsed if isinstance(p, c.Command)])
        with errors_as_status(context):
            executed = iter(self._handler.execute_batch(commands, deadline_of(context)))
        results = []
        for index, (item, wire) in enumerate(zip(parsed, request.commands, strict=True)):
            decided = item if isinstance(item, InvalidCommand) else next(executed)
            outcome = _with_field_paths(decided, item, wire, index)
            if isinstance(outcome, CommandResult):
                results.append(pb.BatchResult(result=rendering.append_result(outcome)))
            else:
                results.append(pb.BatchResult(error=status_for(outcome)))
        return pb.ExecuteBatchResponse(results=results)

    def ImportEvents(
        self, request_iterator: Iterator[pb.ImportEventsRequest], context: grpc.ServicerContext
    ) -> pb.ImportEventsResponse:
        with errors_as_status(context):
            tally = ImportTally()
            chunk: list[tuple[int, pb.BatchCommand, c.Command | InvalidCommand]] = []
            index = 0
            for message in request_iterator:
                for wire in message.commands:
                    parsed = parsing.batch_command(wire, index, self._handler.limits)
                    chunk.append((index, wire, parsed))
                    index += 1
                    if len(chunk) >= self._import_batch:
                        self._import_chunk(chunk, tally)
                        chunk = []
            if chunk:
                self._import_chunk(chunk, tally)
            return tally.response

    def _import_chunk(
        self,
        chunk: list[tuple[int, pb.BatchCommand, c.Command | InvalidCommand]],
        tally: ImportTally,
    ) -> None:
        commands = traced([item for _, _, item in chunk if isinstance(item, c.Command)])
        executed = iter(self._handler.execute_import(commands))
        for index, wire, item in chunk:
            outcome = item if isinstance(item, InvalidCommand) else next(executed)
            tally.add(index, wire, _with_field_paths(outcome, item, wire, index))
        self._after_import_batch()

    def ReadCase(
        self, request: pb.ReadCaseRequest, context: grpc.ServicerContext
    ) -> pb.ReadCaseResponse:
        with errors_as_status(context):
            found = self._reader.read_case(request.case_id, request.after_version, request.limit)
            return pb.ReadCaseResponse(events=rendering.events(found))

    def ReadAll(
        self, request: pb.ReadAllRequest, context: grpc.ServicerContext
    ) -> pb.ReadAllResponse:
        with errors_as_status(context):
            found, head = self._reader.read_all(request.after_position, request.limit)
            return pb.ReadAllResponse(events=rendering.events(found), head_position=head)

    def Subscribe(
        self, request: pb.SubscribeRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.SubscribeResponse]:
        with errors_as_status(context):
            for batch in self._reader.follow(request.after_position, context.is_active):
                yield pb.SubscribeResponse(events=rendering.events(batch))

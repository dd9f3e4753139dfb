import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.rpc import status_pb2 as _status_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Tier(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TIER_UNSPECIFIED: _ClassVar[Tier]
    TIER_L1: _ClassVar[Tier]
    TIER_L2: _ClassVar[Tier]
    TIER_L3: _ClassVar[Tier]
    TIER_L4: _ClassVar[Tier]

class TransferReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRANSFER_REASON_UNSPECIFIED: _ClassVar[TransferReason]
    TRANSFER_REASON_ESCALATION: _ClassVar[TransferReason]
    TRANSFER_REASON_DEESCALATION: _ClassVar[TransferReason]
    TRANSFER_REASON_REROUTE: _ClassVar[TransferReason]
    TRANSFER_REASON_SHIFT_HANDOVER: _ClassVar[TransferReason]
    TRANSFER_REASON_WORKLOAD_BALANCING: _ClassVar[TransferReason]
    TRANSFER_REASON_CUSTOMER_REQUEST: _ClassVar[TransferReason]
    TRANSFER_REASON_OTHER: _ClassVar[TransferReason]

class SwarmRole(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SWARM_ROLE_UNSPECIFIED: _ClassVar[SwarmRole]
    SWARM_ROLE_CONSULTANT: _ClassVar[SwarmRole]
    SWARM_ROLE_CONTRIBUTOR: _ClassVar[SwarmRole]
    SWARM_ROLE_OBSERVER: _ClassVar[SwarmRole]

class SwarmExit(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SWARM_EXIT_UNSPECIFIED: _ClassVar[SwarmExit]
    SWARM_EXIT_LEFT: _ClassVar[SwarmExit]
    SWARM_EXIT_CASE_RESOLVED: _ClassVar[SwarmExit]
    SWARM_EXIT_BECAME_OWNER: _ClassVar[SwarmExit]

class PauseReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PAUSE_REASON_UNSPECIFIED: _ClassVar[PauseReason]
    PAUSE_REASON_AWAITING_CUSTOMER: _ClassVar[PauseReason]
    PAUSE_REASON_AWAITING_THIRD_PARTY: _ClassVar[PauseReason]
    PAUSE_REASON_SCHEDULED: _ClassVar[PauseReason]
TIER_UNSPECIFIED: Tier
TIER_L1: Tier
TIER_L2: Tier
TIER_L3: Tier
TIER_L4: Tier
TRANSFER_REASON_UNSPECIFIED: TransferReason
TRANSFER_REASON_ESCALATION: TransferReason
TRANSFER_REASON_DEESCALATION: TransferReason
TRANSFER_REASON_REROUTE: TransferReason
TRANSFER_REASON_SHIFT_HANDOVER: TransferReason
TRANSFER_REASON_WORKLOAD_BALANCING: TransferReason
TRANSFER_REASON_CUSTOMER_REQUEST: TransferReason
TRANSFER_REASON_OTHER: TransferReason
SWARM_ROLE_UNSPECIFIED: SwarmRole
SWARM_ROLE_CONSULTANT: SwarmRole
SWARM_ROLE_CONTRIBUTOR: SwarmRole
SWARM_ROLE_OBSERVER: SwarmRole
SWARM_EXIT_UNSPECIFIED: SwarmExit
SWARM_EXIT_LEFT: SwarmExit
SWARM_EXIT_CASE_RESOLVED: SwarmExit
SWARM_EXIT_BECAME_OWNER: SwarmExit
PAUSE_REASON_UNSPECIFIED: PauseReason
PAUSE_REASON_AWAITING_CUSTOMER: PauseReason
PAUSE_REASON_AWAITING_THIRD_PARTY: PauseReason
PAUSE_REASON_SCHEDULED: PauseReason

class Owner(_message.Message):
    __slots__ = ("agent_id", "group_id")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    group_id: str
    def __init__(self, agent_id: _Optional[str] = ..., group_id: _Optional[str] = ...) -> None: ...

class AppendResult(_message.Message):
    __slots__ = ("case_id", "command_id", "version", "position", "events_recorded", "replayed")
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    EVENTS_RECORDED_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    command_id: str
    version: int
    position: int
    events_recorded: int
    replayed: bool
    def __init__(self, case_id: _Optional[str] = ..., command_id: _Optional[str] = ..., version: _Optional[int] = ..., position: _Optional[int] = ..., events_recorded: _Optional[int] = ..., replayed: _Optional[bool] = ...) -> None: ...

class AssignRequest(_message.Message):
    __slots__ = ("case_id", "command_id", "expected_version", "actor", "occurred_at", "owner", "tier", "note")
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    command_id: str
    expected_version: int
    actor: str
    occurred_at: _timestamp_pb2.Timestamp
    owner: Owner
    tier: Tier
    note: str
    def __init__(self, case_id: _Optional[str] = ..., command_id: _Optional[str] = ..., expected_version: _Optional[int] = ..., actor: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., owner: _Optional[_Union[Owner, _Mapping]] = ..., tier: _Optional[_Union[Tier, str]] = ..., note: _Optional[str] = ...) -> None: ...

class AssignResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: AppendResult
    def __init__(self, result: _Optional[_Union[AppendResult, _Mapping]] = ...) -> None: ...

class TransferRequest(_message.Message):
    __slots__ = ("case_id", "command_id", "expected_version", "actor", "occurred_at", "to_owner", "reason", "tier", "note", "eta", "warm")
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    TO_OWNER_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    ETA_FIELD_NUMBER: _ClassVar[int]
    WARM_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    command_id: str
    expected_version: int
    actor: str
    occurred_at: _timestamp_pb2.Timestamp
    to_owner: Owner
    reason: TransferReason
    tier: Tier
    note: str
    eta: _timestamp_pb2.Timestamp
    warm: bool
    def __init__(self, case_id: _Optional[str] = ..., command_id: _Optional[str] = ..., expected_version: _Optional[int] = ..., actor: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., to_owner: _Optional[_Union[Owner, _Mapping]] = ..., reason: _Optional[_Union[TransferReason, str]] = ..., tier: _Optional[_Union[Tier, str]] = ..., note: _Optional[str] = ..., eta: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., warm: _Optional[bool] = ...) -> None: ...

class TransferResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: AppendResult
    def __init__(self, result: _Optional[_Union[AppendResult, _Mapping]] = ...) -> None: ...

class JoinSwarmRequest(_message.Message):
    __slots__ = ("case_id", "command_id", "expected_version", "actor", "occurred_at", "agent_id", "group_id", "role", "note")
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    command_id: str
    expected_version: int
    actor: str
    occurred_at: _timestamp_pb2.Timestamp
    agent_id: str
    group_id: str
    role: SwarmRole
    note: str
    def __init__(self, case_id: _Optional[str] = ..., command_id: _Optional[str] = ..., expected_version: _Optional[int] = ..., actor: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., agent_id: _Optional[str] = ..., group_id: _Optional[str] = ..., role: _Optional[_Union[SwarmRole, str]] = ..., note: _Optional[str] = ...) -> None: ...

class JoinSwarmResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: AppendResult
    def __init__(self, result: _Optional[_Union[AppendResult, _Mapping]] = ...) -> None: ...

class LeaveSwarmRequest(_message.Message):
    __slots__ = ("case_id", "command_id", "expected_version", "actor", "occurred_at", "agent_id", "note")
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    command_id: str
    expected_version: int
    actor: str
    occurred_at: _timestamp_pb2.Timestamp
    agent_id: str
    note: str
    def __init__(self, case_id: _Optional[str] = ..., command_id: _Optional[str] = ..., expected_version: _Optional[int] = ..., actor: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., agent_id: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...

class LeaveSwarmResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: AppendResult
    def __init__(self, result: _Optional[_Union[AppendResult, _Mapping]] = ...) -> None: ...

class PauseRequest(_message.Message):
    __slots__ = ("case_id", "command_id", "expected_version", "actor", "occurred_at", "reason", "until", "note")
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    command_id: str
    expected_version: int
    actor: str
    occurred_at: _timestamp_pb2.Timestamp
    reason: PauseReason
    until: _timestamp_pb2.Timestamp
    note: str
    def __init__(self, case_id: _Optional[str] = ..., command_id: _Optional[str] = ..., expected_version: _Optional[int] = ..., actor: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[_Union[PauseReason, str]] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., note: _Optional[str] = ...) -> None: ...

class PauseResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: AppendResult
    def __init__(self, result: _Optional[_Union[AppendResult, _Mapping]] = ...) -> None: ...

class ResumeRequest(_message.Message):
    __slots__ = ("case_id", "command_id", "expected_version", "actor", "occurred_at", "note")
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    command_id: str
    expected_version: int
    actor: str
    occurred_at: _timestamp_pb2.Timestamp
    note: str
    def __init__(self, case_id: _Optional[str] = ..., command_id: _Optional[str] = ..., expected_version: _Optional[int] = ..., actor: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., note: _Optional[str] = ...) -> None: ...

class ResumeResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: AppendResult
    def __init__(self, result: _Optional[_Union[AppendResult, _Mapping]] = ...) -> None: ...

class ResolveRequest(_message.Message):
    __slots__ = ("case_id", "command_id", "expected_version", "actor", "occurred_at", "resolution_code", "note")
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_CODE_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    command_id: str
    expected_version: int
    actor: str
    occurred_at: _timestamp_pb2.Timestamp
    resolution_code: str
    note: str
    def __init__(self, case_id: _Optional[str] = ..., command_id: _Optional[str] = ..., expected_version: _Optional[int] = ..., actor: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., resolution_code: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...

class ResolveResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: AppendResult
    def __init__(self, result: _Optional[_Union[AppendResult, _Mapping]] = ...) -> None: ...

class ReopenRequest(_message.Message):
    __slots__ = ("case_id", "command_id", "expected_version", "actor", "occurred_at", "reason", "note")
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    command_id: str
    expected_version: int
    actor: str
    occurred_at: _timestamp_pb2.Timestamp
    reason: str
    note: str
    def __init__(self, case_id: _Optional[str] = ..., command_id: _Optional[str] = ..., expected_version: _Optional[int] = ..., actor: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...

class ReopenResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: AppendResult
    def __init__(self, result: _Optional[_Union[AppendResult, _Mapping]] = ...) -> None: ...

class RecordActivityRequest(_message.Message):
    __slots__ = ("case_id", "command_id", "expected_version", "actor", "occurred_at", "activity", "note")
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    ACTIVITY_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    command_id: str
    expected_version: int
    actor: str
    occurred_at: _timestamp_pb2.Timestamp
    activity: str
    note: str
    def __init__(self, case_id: _Optional[str] = ..., command_id: _Optional[str] = ..., expected_version: _Optional[int] = ..., actor: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., activity: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...

class RecordActivityResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: AppendResult
    def __init__(self, result: _Optional[_Union[AppendResult, _Mapping]] = ...) -> None: ...

class CorrectOccurrenceRequest(_message.Message):
    __slots__ = ("case_id", "command_id", "expected_version", "actor", "occurred_at", "corrects_version", "corrected_occurred_at", "reason", "note")
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    CORRECTS_VERSION_FIELD_NUMBER: _ClassVar[int]
    CORRECTED_OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    command_id: str
    expected_version: int
    actor: str
    occurred_at: _timestamp_pb2.Timestamp
    corrects_version: int
    corrected_occurred_at: _timestamp_pb2.Timestamp
    reason: str
    note: str
    def __init__(self, case_id: _Optional[str] = ..., command_id: _Optional[str] = ..., expected_version: _Optional[int] = ..., actor: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., corrects_version: _Optional[int] = ..., corrected_occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...

class CorrectOccurrenceResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: AppendResult
    def __init__(self, result: _Optional[_Union[AppendResult, _Mapping]] = ...) -> None: ...

class BatchCommand(_message.Message):
    __slots__ = ("assign", "transfer", "join_swarm", "leave_swarm", "pause", "resume", "resolve", "reopen", "correct_occurrence", "record_activity")
    ASSIGN_FIELD_NUMBER: _ClassVar[int]
    TRANSFER_FIELD_NUMBER: _ClassVar[int]
    JOIN_SWARM_FIELD_NUMBER: _ClassVar[int]
    LEAVE_SWARM_FIELD_NUMBER: _ClassVar[int]
    PAUSE_FIELD_NUMBER: _ClassVar[int]
    RESUME_FIELD_NUMBER: _ClassVar[int]
    RESOLVE_FIELD_NUMBER: _ClassVar[int]
    REOPEN_FIELD_NUMBER: _ClassVar[int]
    CORRECT_OCCURRENCE_FIELD_NUMBER: _ClassVar[int]
    RECORD_ACTIVITY_FIELD_NUMBER: _ClassVar[int]
    assign: AssignRequest
    transfer: TransferRequest
    join_swarm: JoinSwarmRequest
    leave_swarm: LeaveSwarmRequest
    pause: PauseRequest
    resume: ResumeRequest
    resolve: ResolveRequest
    reopen: ReopenRequest
    correct_occurrence: CorrectOccurrenceRequest
    record_activity: RecordActivityRequest
    def __init__(self, assign: _Optional[_Union[AssignRequest, _Mapping]] = ..., transfer: _Optional[_Union[TransferRequest, _Mapping]] = ..., join_swarm: _Optional[_Union[JoinSwarmRequest, _Mapping]] = ..., leave_swarm: _Optional[_Union[LeaveSwarmRequest, _Mapping]] = ..., pause: _Optional[_Union[PauseRequest, _Mapping]] = ..., resume: _Optional[_Union[ResumeRequest, _Mapping]] = ..., resolve: _Optional[_Union[ResolveRequest, _Mapping]] = ..., reopen: _Optional[_Union[ReopenRequest, _Mapping]] = ..., correct_occurrence: _Optional[_Union[CorrectOccurrenceRequest, _Mapping]] = ..., record_activity: _Optional[_Union[RecordActivityRequest, _Mapping]] = ...) -> None: ...

class ExecuteBatchRequest(_message.Message):
    __slots__ = ("commands",)
    COMMANDS_FIELD_NUMBER: _ClassVar[int]
    commands: _containers.RepeatedCompositeFieldContainer[BatchCommand]
    def __init__(self, commands: _Optional[_Iterable[_Union[BatchCommand, _Mapping]]] = ...) -> None: ...

class BatchResult(_message.Message):
    __slots__ = ("result", "error")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    result: AppendResult
    error: _status_pb2.Status
    def __init__(self, result: _Optional[_Union[AppendResult, _Mapping]] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ...) -> None: ...

class ExecuteBatchResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[BatchResult]
    def __init__(self, results: _Optional[_Iterable[_Union[BatchResult, _Mapping]]] = ...) -> None: ...

class ImportEventsRequest(_message.Message):
    __slots__ = ("commands",)
    COMMANDS_FIELD_NUMBER: _ClassVar[int]
    commands: _containers.RepeatedCompositeFieldContainer[BatchCommand]
    def __init__(self, commands: _Optional[_Iterable[_Union[BatchCommand, _Mapping]]] = ...) -> None: ...

class ImportRefusal(_message.Message):
    __slots__ = ("index", "case_id", "command_id", "error")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    index: int
    case_id: str
    command_id: str
    error: _status_pb2.Status
    def __init__(self, index: _Optional[int] = ..., case_id: _Optional[str] = ..., command_id: _Optional[str] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ...) -> None: ...

class ImportEventsResponse(_message.Message):
    __slots__ = ("accepted", "replayed", "refused", "events_recorded", "last_position", "refusals")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    REFUSED_FIELD_NUMBER: _ClassVar[int]
    EVENTS_RECORDED_FIELD_NUMBER: _ClassVar[int]
    LAST_POSITION_FIELD_NUMBER: _ClassVar[int]
    REFUSALS_FIELD_NUMBER: _ClassVar[int]
    accepted: int
    replayed: int
    refused: int
    events_recorded: int
    last_position: int
    refusals: _containers.RepeatedCompositeFieldContainer[ImportRefusal]
    def __init__(self, accepted: _Optional[int] = ..., replayed: _Optional[int] = ..., refused: _Optional[int] = ..., events_recorded: _Optional[int] = ..., last_position: _Optional[int] = ..., refusals: _Optional[_Iterable[_Union[ImportRefusal, _Mapping]]] = ...) -> None: ...

class ReadCaseRequest(_message.Message):
    __slots__ = ("case_id", "after_version", "limit")
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_VERSION_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    after_version: int
    limit: int
    def __init__(self, case_id: _Optional[str] = ..., after_version: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class ReadCaseResponse(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[Event]
    def __init__(self, events: _Optional[_Iterable[_Union[Event, _Mapping]]] = ...) -> None: ...

class ReadAllRequest(_message.Message):
    __slots__ = ("after_position", "limit")
    AFTER_POSITION_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    after_position: int
    limit: int
    def __init__(self, after_position: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class ReadAllResponse(_message.Message):
    __slots__ = ("events", "head_position")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    HEAD_POSITION_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[Event]
    head_position: int
    def __init__(self, events: _Optional[_Iterable[_Union[Event, _Mapping]]] = ..., head_position: _Optional[int] = ...) -> None: ...

class SubscribeRequest(_message.Message):
    __slots__ = ("after_position",)
    AFTER_POSITION_FIELD_NUMBER: _ClassVar[int]
    after_position: int
    def __init__(self, after_position: _Optional[int] = ...) -> None: ...

class SubscribeResponse(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[Event]
    def __init__(self, events: _Optional[_Iterable[_Union[Event, _Mapping]]] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("position", "case_id", "version", "occurred_at", "recorded_at", "actor", "command_id", "assigned", "transferred", "swarm_joined", "swarm_left", "paused", "resumed", "resolved", "reopened", "occurrence_corrected", "activity_recorded")
    POSITION_FIELD_NUMBER: _ClassVar[int]
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    RECORDED_AT_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    ASSIGNED_FIELD_NUMBER: _ClassVar[int]
    TRANSFERRED_FIELD_NUMBER: _ClassVar[int]
    SWARM_JOINED_FIELD_NUMBER: _ClassVar[int]
    SWARM_LEFT_FIELD_NUMBER: _ClassVar[int]
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    RESUMED_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_FIELD_NUMBER: _ClassVar[int]
    REOPENED_FIELD_NUMBER: _ClassVar[int]
    OCCURRENCE_CORRECTED_FIELD_NUMBER: _ClassVar[int]
    ACTIVITY_RECORDED_FIELD_NUMBER: _ClassVar[int]
    position: int
    case_id: str
    version: int
    occurred_at: _timestamp_pb2.Timestamp
    recorded_at: _timestamp_pb2.Timestamp
    actor: str
    command_id: str
    assigned: Assigned
    transferred: Transferred
    swarm_joined: SwarmJoined
    swarm_left: SwarmLeft
    paused: Paused
    resumed: Resumed
    resolved: Resolved
    reopened: Reopened
    occurrence_corrected: OccurrenceCorrected
    activity_recorded: ActivityRecorded
    def __init__(self, position: _Optional[int] = ..., case_id: _Optional[str] = ..., version: _Optional[int] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., recorded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., actor: _Optional[str] = ..., command_id: _Optional[str] = ..., assigned: _Optional[_Union[Assigned, _Mapping]] = ..., transferred: _Optional[_Union[Transferred, _Mapping]] = ..., swarm_joined: _Optional[_Union[SwarmJoined, _Mapping]] = ..., swarm_left: _Optional[_Union[SwarmLeft, _Mapping]] = ..., paused: _Optional[_Union[Paused, _Mapping]] = ..., resumed: _Optional[_Union[Resumed, _Mapping]] = ..., resolved: _Optional[_Union[Resolved, _Mapping]] = ..., reopened: _Optional[_Union[Reopened, _Mapping]] = ..., occurrence_corrected: _Optional[_Union[OccurrenceCorrected, _Mapping]] = ..., activity_recorded: _Optional[_Union[ActivityRecorded, _Mapping]] = ...) -> None: ...

class Assigned(_message.Message):
    __slots__ = ("owner", "tier", "note")
    OWNER_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    owner: Owner
    tier: Tier
    note: str
    def __init__(self, owner: _Optional[_Union[Owner, _Mapping]] = ..., tier: _Optional[_Union[Tier, str]] = ..., note: _Optional[str] = ...) -> None: ...

class Transferred(_message.Message):
    __slots__ = ("from_owner", "to_owner", "reason", "from_tier", "to_tier", "note", "eta", "warm")
    FROM_OWNER_FIELD_NUMBER: _ClassVar[int]
    TO_OWNER_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    FROM_TIER_FIELD_NUMBER: _ClassVar[int]
    TO_TIER_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    ETA_FIELD_NUMBER: _ClassVar[int]
    WARM_FIELD_NUMBER: _ClassVar[int]
    from_owner: Owner
    to_owner: Owner
    reason: TransferReason
    from_tier: Tier
    to_tier: Tier
    note: str
    eta: _timestamp_pb2.Timestamp
    warm: bool
    def __init__(self, from_owner: _Optional[_Union[Owner, _Mapping]] = ..., to_owner: _Optional[_Union[Owner, _Mapping]] = ..., reason: _Optional[_Union[TransferReason, str]] = ..., from_tier: _Optional[_Union[Tier, str]] = ..., to_tier: _Optional[_Union[Tier, str]] = ..., note: _Optional[str] = ..., eta: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., warm: _Optional[bool] = ...) -> None: ...

class SwarmJoined(_message.Message):
    __slots__ = ("agent_id", "group_id", "role", "note")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    group_id: str
    role: SwarmRole
    note: str
    def __init__(self, agent_id: _Optional[str] = ..., group_id: _Optional[str] = ..., role: _Optional[_Union[SwarmRole, str]] = ..., note: _Optional[str] = ...) -> None: ...

class SwarmLeft(_message.Message):
    __slots__ = ("agent_id", "role", "cause", "note")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CAUSE_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    role: SwarmRole
    cause: SwarmExit
    note: str
    def __init__(self, agent_id: _Optional[str] = ..., role: _Optional[_Union[SwarmRole, str]] = ..., cause: _Optional[_Union[SwarmExit, str]] = ..., note: _Optional[str] = ...) -> None: ...

class Paused(_message.Message):
    __slots__ = ("reason", "until", "note")
    REASON_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    reason: PauseReason
    until: _timestamp_pb2.Timestamp
    note: str
    def __init__(self, reason: _Optional[_Union[PauseReason, str]] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., note: _Optional[str] = ...) -> None: ...

class Resumed(_message.Message):
    __slots__ = ("reason", "note")
    REASON_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    reason: PauseReason
    note: str
    def __init__(self, reason: _Optional[_Union[PauseReason, str]] = ..., note: _Optional[str] = ...) -> None: ...

class Resolved(_message.Message):
    __slots__ = ("resolver", "resolution_code", "note")
    RESOLVER_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_CODE_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    resolver: Owner
    resolution_code: str
    note: str
    def __init__(self, resolver: _Optional[_Union[Owner, _Mapping]] = ..., resolution_code: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...

class Reopened(_message.Message):
    __slots__ = ("reason", "note")
    REASON_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    reason: str
    note: str
    def __init__(self, reason: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...

class OccurrenceCorrected(_message.Message):
    __slots__ = ("corrects_version", "original_occurred_at", "corrected_occurred_at", "reason", "note")
    CORRECTS_VERSION_FIELD_NUMBER: _ClassVar[int]
    ORIGINAL_OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    CORRECTED_OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    corrects_version: int
    original_occurred_at: _timestamp_pb2.Timestamp
    corrected_occurred_at: _timestamp_pb2.Timestamp
    reason: str
    note: str
    def __init__(self, corrects_version: _Optional[int] = ..., original_occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., corrected_occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...

class ActivityRecorded(_message.Message):
    __slots__ = ("activity", "note")
    ACTIVITY_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    activity: str
    note: str
    def __init__(self, activity: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...

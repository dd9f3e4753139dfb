import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from ownership.v1 import ledger_pb2 as _ledger_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CaseStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CASE_STATUS_UNSPECIFIED: _ClassVar[CaseStatus]
    CASE_STATUS_OPEN: _ClassVar[CaseStatus]
    CASE_STATUS_PAUSED: _ClassVar[CaseStatus]
    CASE_STATUS_RESOLVED: _ClassVar[CaseStatus]

class OwnershipLevel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OWNERSHIP_LEVEL_UNSPECIFIED: _ClassVar[OwnershipLevel]
    OWNERSHIP_LEVEL_PERSON: _ClassVar[OwnershipLevel]
    OWNERSHIP_LEVEL_GROUP: _ClassVar[OwnershipLevel]

class DurationScope(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DURATION_SCOPE_UNSPECIFIED: _ClassVar[DurationScope]
    DURATION_SCOPE_CASE: _ClassVar[DurationScope]
    DURATION_SCOPE_PERSON: _ClassVar[DurationScope]
    DURATION_SCOPE_GROUP: _ClassVar[DurationScope]
CASE_STATUS_UNSPECIFIED: CaseStatus
CASE_STATUS_OPEN: CaseStatus
CASE_STATUS_PAUSED: CaseStatus
CASE_STATUS_RESOLVED: CaseStatus
OWNERSHIP_LEVEL_UNSPECIFIED: OwnershipLevel
OWNERSHIP_LEVEL_PERSON: OwnershipLevel
OWNERSHIP_LEVEL_GROUP: OwnershipLevel
DURATION_SCOPE_UNSPECIFIED: DurationScope
DURATION_SCOPE_CASE: DurationScope
DURATION_SCOPE_PERSON: DurationScope
DURATION_SCOPE_GROUP: DurationScope

class Participant(_message.Message):
    __slots__ = ("agent_id", "group_id", "role")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    group_id: str
    role: _ledger_pb2.SwarmRole
    def __init__(self, agent_id: _Optional[str] = ..., group_id: _Optional[str] = ..., role: _Optional[_Union[_ledger_pb2.SwarmRole, str]] = ...) -> None: ...

class CaseOwnership(_message.Message):
    __slots__ = ("case_id", "owner", "status", "pause_reason", "tier", "participants", "version", "last_position", "opened_at", "owned_since", "held_for")
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PAUSE_REASON_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    PARTICIPANTS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    LAST_POSITION_FIELD_NUMBER: _ClassVar[int]
    OPENED_AT_FIELD_NUMBER: _ClassVar[int]
    OWNED_SINCE_FIELD_NUMBER: _ClassVar[int]
    HELD_FOR_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    owner: _ledger_pb2.Owner
    status: CaseStatus
    pause_reason: _ledger_pb2.PauseReason
    tier: _ledger_pb2.Tier
    participants: _containers.RepeatedCompositeFieldContainer[Participant]
    version: int
    last_position: int
    opened_at: _timestamp_pb2.Timestamp
    owned_since: _timestamp_pb2.Timestamp
    held_for: _duration_pb2.Duration
    def __init__(self, case_id: _Optional[str] = ..., owner: _Optional[_Union[_ledger_pb2.Owner, _Mapping]] = ..., status: _Optional[_Union[CaseStatus, str]] = ..., pause_reason: _Optional[_Union[_ledger_pb2.PauseReason, str]] = ..., tier: _Optional[_Union[_ledger_pb2.Tier, str]] = ..., participants: _Optional[_Iterable[_Union[Participant, _Mapping]]] = ..., version: _Optional[int] = ..., last_position: _Optional[int] = ..., opened_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., owned_since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., held_for: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class GetCurrentOwnerRequest(_message.Message):
    __slots__ = ("case_id", "min_position")
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    MIN_POSITION_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    min_position: int
    def __init__(self, case_id: _Optional[str] = ..., min_position: _Optional[int] = ...) -> None: ...

class GetCurrentOwnerResponse(_message.Message):
    __slots__ = ("case",)
    CASE_FIELD_NUMBER: _ClassVar[int]
    case: CaseOwnership
    def __init__(self, case: _Optional[_Union[CaseOwnership, _Mapping]] = ...) -> None: ...

class ListCasesByOwnerRequest(_message.Message):
    __slots__ = ("agent_id", "group_id", "limit", "min_position")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    MIN_POSITION_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    group_id: str
    limit: int
    min_position: int
    def __init__(self, agent_id: _Optional[str] = ..., group_id: _Optional[str] = ..., limit: _Optional[int] = ..., min_position: _Optional[int] = ...) -> None: ...

class ListCasesByOwnerResponse(_message.Message):
    __slots__ = ("cases",)
    CASES_FIELD_NUMBER: _ClassVar[int]
    cases: _containers.RepeatedCompositeFieldContainer[CaseOwnership]
    def __init__(self, cases: _Optional[_Iterable[_Union[CaseOwnership, _Mapping]]] = ...) -> None: ...

class GetOwnerAtRequest(_message.Message):
    __slots__ = ("case_id", "at", "min_position")
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    MIN_POSITION_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    at: _timestamp_pb2.Timestamp
    min_position: int
    def __init__(self, case_id: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., min_position: _Optional[int] = ...) -> None: ...

class GetOwnerAtResponse(_message.Message):
    __slots__ = ("owner", "tier", "participants")
    OWNER_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    PARTICIPANTS_FIELD_NUMBER: _ClassVar[int]
    owner: _ledger_pb2.Owner
    tier: _ledger_pb2.Tier
    participants: _containers.RepeatedCompositeFieldContainer[Participant]
    def __init__(self, owner: _Optional[_Union[_ledger_pb2.Owner, _Mapping]] = ..., tier: _Optional[_Union[_ledger_pb2.Tier, str]] = ..., participants: _Optional[_Iterable[_Union[Participant, _Mapping]]] = ...) -> None: ...

class PausedTime(_message.Message):
    __slots__ = ("reason", "duration")
    REASON_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    reason: _ledger_pb2.PauseReason
    duration: _duration_pb2.Duration
    def __init__(self, reason: _Optional[_Union[_ledger_pb2.PauseReason, str]] = ..., duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class OwnershipInterval(_message.Message):
    __slots__ = ("level", "holder", "group_id", "tier", "start", "end", "duration", "paused")
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    HOLDER_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    level: OwnershipLevel
    holder: str
    group_id: str
    tier: _ledger_pb2.Tier
    start: _timestamp_pb2.Timestamp
    end: _timestamp_pb2.Timestamp
    duration: _duration_pb2.Duration
    paused: _containers.RepeatedCompositeFieldContainer[PausedTime]
    def __init__(self, level: _Optional[_Union[OwnershipLevel, str]] = ..., holder: _Optional[str] = ..., group_id: _Optional[str] = ..., tier: _Optional[_Union[_ledger_pb2.Tier, str]] = ..., start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., paused: _Optional[_Iterable[_Union[PausedTime, _Mapping]]] = ...) -> None: ...

class GetOwnershipIntervalsRequest(_message.Message):
    __slots__ = ("case_id", "level", "min_position")
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    MIN_POSITION_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    level: OwnershipLevel
    min_position: int
    def __init__(self, case_id: _Optional[str] = ..., level: _Optional[_Union[OwnershipLevel, str]] = ..., min_position: _Optional[int] = ...) -> None: ...

class GetOwnershipIntervalsResponse(_message.Message):
    __slots__ = ("intervals",)
    INTERVALS_FIELD_NUMBER: _ClassVar[int]
    intervals: _containers.RepeatedCompositeFieldContainer[OwnershipInterval]
    def __init__(self, intervals: _Optional[_Iterable[_Union[OwnershipInterval, _Mapping]]] = ...) -> None: ...

class DurationTotal(_message.Message):
    __slots__ = ("key", "owned", "paused", "working", "tenures")
    KEY_FIELD_NUMBER: _ClassVar[int]
    OWNED_FIELD_NUMBER: _ClassVar[int]
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    WORKING_FIELD_NUMBER: _ClassVar[int]
    TENURES_FIELD_NUMBER: _ClassVar[int]
    key: str
    owned: _duration_pb2.Duration
    paused: _containers.RepeatedCompositeFieldContainer[PausedTime]
    working: _duration_pb2.Duration
    tenures: int
    def __init__(self, key: _Optional[str] = ..., owned: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., paused: _Optional[_Iterable[_Union[PausedTime, _Mapping]]] = ..., working: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., tenures: _Optional[int] = ...) -> None: ...

class GetDurationsRequest(_message.Message):
    __slots__ = ("scope", "key", "level", "limit", "min_position")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    MIN_POSITION_FIELD_NUMBER: _ClassVar[int]
    scope: DurationScope
    key: str
    level: OwnershipLevel
    limit: int
    min_position: int
    def __init__(self, scope: _Optional[_Union[DurationScope, str]] = ..., key: _Optional[str] = ..., level: _Optional[_Union[OwnershipLevel, str]] = ..., limit: _Optional[int] = ..., min_position: _Optional[int] = ...) -> None: ...

class GetDurationsResponse(_message.Message):
    __slots__ = ("totals",)
    TOTALS_FIELD_NUMBER: _ClassVar[int]
    totals: _containers.RepeatedCompositeFieldContainer[DurationTotal]
    def __init__(self, totals: _Optional[_Iterable[_Union[DurationTotal, _Mapping]]] = ...) -> None: ...

class LevelHandoffs(_message.Message):
    __slots__ = ("changes", "stations", "unique_owners", "returns", "pingpong_returns", "longest_pingpong")
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    STATIONS_FIELD_NUMBER: _ClassVar[int]
    UNIQUE_OWNERS_FIELD_NUMBER: _ClassVar[int]
    RETURNS_FIELD_NUMBER: _ClassVar[int]
    PINGPONG_RETURNS_FIELD_NUMBER: _ClassVar[int]
    LONGEST_PINGPONG_FIELD_NUMBER: _ClassVar[int]
    changes: int
    stations: int
    unique_owners: int
    returns: int
    pingpong_returns: int
    longest_pingpong: int
    def __init__(self, changes: _Optional[int] = ..., stations: _Optional[int] = ..., unique_owners: _Optional[int] = ..., returns: _Optional[int] = ..., pingpong_returns: _Optional[int] = ..., longest_pingpong: _Optional[int] = ...) -> None: ...

class GetHandoffStatsRequest(_message.Message):
    __slots__ = ("case_id", "min_position")
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    MIN_POSITION_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    min_position: int
    def __init__(self, case_id: _Optional[str] = ..., min_position: _Optional[int] = ...) -> None: ...

class GetHandoffStatsResponse(_message.Message):
    __slots__ = ("case_id", "person", "group", "warm", "cold", "warm_share", "tiers_crossed")
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    PERSON_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    WARM_FIELD_NUMBER: _ClassVar[int]
    COLD_FIELD_NUMBER: _ClassVar[int]
    WARM_SHARE_FIELD_NUMBER: _ClassVar[int]
    TIERS_CROSSED_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    person: LevelHandoffs
    group: LevelHandoffs
    warm: int
    cold: int
    warm_share: float
    tiers_crossed: int
    def __init__(self, case_id: _Optional[str] = ..., person: _Optional[_Union[LevelHandoffs, _Mapping]] = ..., group: _Optional[_Union[LevelHandoffs, _Mapping]] = ..., warm: _Optional[int] = ..., cold: _Optional[int] = ..., warm_share: _Optional[float] = ..., tiers_crossed: _Optional[int] = ...) -> None: ...

class HandoverEdge(_message.Message):
    __slots__ = ("from_holder", "to_holder", "count")
    FROM_HOLDER_FIELD_NUMBER: _ClassVar[int]
    TO_HOLDER_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    from_holder: str
    to_holder: str
    count: int
    def __init__(self, from_holder: _Optional[str] = ..., to_holder: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...

class GetHandoverNetworkRequest(_message.Message):
    __slots__ = ("level", "top_n", "min_position")
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    TOP_N_FIELD_NUMBER: _ClassVar[int]
    MIN_POSITION_FIELD_NUMBER: _ClassVar[int]
    level: OwnershipLevel
    top_n: int
    min_position: int
    def __init__(self, level: _Optional[_Union[OwnershipLevel, str]] = ..., top_n: _Optional[int] = ..., min_position: _Optional[int] = ...) -> None: ...

class GetHandoverNetworkResponse(_message.Message):
    __slots__ = ("edges",)
    EDGES_FIELD_NUMBER: _ClassVar[int]
    edges: _containers.RepeatedCompositeFieldContainer[HandoverEdge]
    def __init__(self, edges: _Optional[_Iterable[_Union[HandoverEdge, _Mapping]]] = ...) -> None: ...

class CreditLine(_message.Message):
    __slots__ = ("case_id", "agent_id", "group_id", "amount", "kind", "resolution_seq", "at")
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_SEQ_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    agent_id: str
    group_id: str
    amount: float
    kind: str
    resolution_seq: int
    at: _timestamp_pb2.Timestamp
    def __init__(self, case_id: _Optional[str] = ..., agent_id: _Optional[str] = ..., group_id: _Optional[str] = ..., amount: _Optional[float] = ..., kind: _Optional[str] = ..., resolution_seq: _Optional[int] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetCreditRequest(_message.Message):
    __slots__ = ("case_id", "agent_id", "group_id", "policy", "min_position")
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    MIN_POSITION_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    agent_id: str
    group_id: str
    policy: str
    min_position: int
    def __init__(self, case_id: _Optional[str] = ..., agent_id: _Optional[str] = ..., group_id: _Optional[str] = ..., policy: _Optional[str] = ..., min_position: _Optional[int] = ...) -> None: ...

class GetCreditResponse(_message.Message):
    __slots__ = ("policy", "lines", "total_credit", "total_assists")
    POLICY_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    TOTAL_CREDIT_FIELD_NUMBER: _ClassVar[int]
    TOTAL_ASSISTS_FIELD_NUMBER: _ClassVar[int]
    policy: str
    lines: _containers.RepeatedCompositeFieldContainer[CreditLine]
    total_credit: float
    total_assists: float
    def __init__(self, policy: _Optional[str] = ..., lines: _Optional[_Iterable[_Union[CreditLine, _Mapping]]] = ..., total_credit: _Optional[float] = ..., total_assists: _Optional[float] = ...) -> None: ...

class Overstay(_message.Message):
    __slots__ = ("case", "target")
    CASE_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    case: CaseOwnership
    target: _duration_pb2.Duration
    def __init__(self, case: _Optional[_Union[CaseOwnership, _Mapping]] = ..., target: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class ListOverstaysRequest(_message.Message):
    __slots__ = ("group_id", "limit", "min_position")
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    MIN_POSITION_FIELD_NUMBER: _ClassVar[int]
    group_id: str
    limit: int
    min_position: int
    def __init__(self, group_id: _Optional[str] = ..., limit: _Optional[int] = ..., min_position: _Optional[int] = ...) -> None: ...

class ListOverstaysResponse(_message.Message):
    __slots__ = ("overstays",)
    OVERSTAYS_FIELD_NUMBER: _ClassVar[int]
    overstays: _containers.RepeatedCompositeFieldContainer[Overstay]
    def __init__(self, overstays: _Optional[_Iterable[_Union[Overstay, _Mapping]]] = ...) -> None: ...

class GetHandoffTimelineRequest(_message.Message):
    __slots__ = ("case_id",)
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    def __init__(self, case_id: _Optional[str] = ...) -> None: ...

class HandoffTimelineEntry(_message.Message):
    __slots__ = ("event", "trace_id", "span_id")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    SPAN_ID_FIELD_NUMBER: _ClassVar[int]
    event: _ledger_pb2.Event
    trace_id: str
    span_id: str
    def __init__(self, event: _Optional[_Union[_ledger_pb2.Event, _Mapping]] = ..., trace_id: _Optional[str] = ..., span_id: _Optional[str] = ...) -> None: ...

class GetHandoffTimelineResponse(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[HandoffTimelineEntry]
    def __init__(self, entries: _Optional[_Iterable[_Union[HandoffTimelineEntry, _Mapping]]] = ...) -> None: ...

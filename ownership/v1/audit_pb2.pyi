import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BreakKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BREAK_KIND_UNSPECIFIED: _ClassVar[BreakKind]
    BREAK_KIND_HASH_MISMATCH: _ClassVar[BreakKind]
    BREAK_KIND_UNCHAINED: _ClassVar[BreakKind]
    BREAK_KIND_VERSION_SEQUENCE: _ClassVar[BreakKind]
    BREAK_KIND_PREVIOUS_MISMATCH: _ClassVar[BreakKind]
    BREAK_KIND_POSITION_GAP: _ClassVar[BreakKind]
    BREAK_KIND_POSITION_ORDER: _ClassVar[BreakKind]
    BREAK_KIND_CHECKPOINT_MISMATCH: _ClassVar[BreakKind]
    BREAK_KIND_TRUNCATED: _ClassVar[BreakKind]
    BREAK_KIND_UNREADABLE: _ClassVar[BreakKind]
BREAK_KIND_UNSPECIFIED: BreakKind
BREAK_KIND_HASH_MISMATCH: BreakKind
BREAK_KIND_UNCHAINED: BreakKind
BREAK_KIND_VERSION_SEQUENCE: BreakKind
BREAK_KIND_PREVIOUS_MISMATCH: BreakKind
BREAK_KIND_POSITION_GAP: BreakKind
BREAK_KIND_POSITION_ORDER: BreakKind
BREAK_KIND_CHECKPOINT_MISMATCH: BreakKind
BREAK_KIND_TRUNCATED: BreakKind
BREAK_KIND_UNREADABLE: BreakKind

class ReadCaseHistoryRequest(_message.Message):
    __slots__ = ("case_id",)
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    def __init__(self, case_id: _Optional[str] = ...) -> None: ...

class ReadCaseHistoryResponse(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[AuditedEvent]
    def __init__(self, events: _Optional[_Iterable[_Union[AuditedEvent, _Mapping]]] = ...) -> None: ...

class VerifyCaseRequest(_message.Message):
    __slots__ = ("case_id",)
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    def __init__(self, case_id: _Optional[str] = ...) -> None: ...

class VerifyCaseResponse(_message.Message):
    __slots__ = ("verification",)
    VERIFICATION_FIELD_NUMBER: _ClassVar[int]
    verification: Verification
    def __init__(self, verification: _Optional[_Union[Verification, _Mapping]] = ...) -> None: ...

class VerifyRangeRequest(_message.Message):
    __slots__ = ("first_position", "last_position")
    FIRST_POSITION_FIELD_NUMBER: _ClassVar[int]
    LAST_POSITION_FIELD_NUMBER: _ClassVar[int]
    first_position: int
    last_position: int
    def __init__(self, first_position: _Optional[int] = ..., last_position: _Optional[int] = ...) -> None: ...

class VerifyRangeResponse(_message.Message):
    __slots__ = ("verification",)
    VERIFICATION_FIELD_NUMBER: _ClassVar[int]
    verification: Verification
    def __init__(self, verification: _Optional[_Union[Verification, _Mapping]] = ...) -> None: ...

class ExportRangeRequest(_message.Message):
    __slots__ = ("first_position", "last_position")
    FIRST_POSITION_FIELD_NUMBER: _ClassVar[int]
    LAST_POSITION_FIELD_NUMBER: _ClassVar[int]
    first_position: int
    last_position: int
    def __init__(self, first_position: _Optional[int] = ..., last_position: _Optional[int] = ...) -> None: ...

class ExportRangeResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: AuditedEvent
    def __init__(self, event: _Optional[_Union[AuditedEvent, _Mapping]] = ...) -> None: ...

class AuditedEvent(_message.Message):
    __slots__ = ("position", "case_id", "version", "type", "topic", "class_version", "occurred_at", "recorded_at", "payload_json", "hashes", "corrects_version", "corrected_by_versions")
    POSITION_FIELD_NUMBER: _ClassVar[int]
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    CLASS_VERSION_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    RECORDED_AT_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_JSON_FIELD_NUMBER: _ClassVar[int]
    HASHES_FIELD_NUMBER: _ClassVar[int]
    CORRECTS_VERSION_FIELD_NUMBER: _ClassVar[int]
    CORRECTED_BY_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    position: int
    case_id: str
    version: int
    type: str
    topic: str
    class_version: int
    occurred_at: _timestamp_pb2.Timestamp
    recorded_at: _timestamp_pb2.Timestamp
    payload_json: str
    hashes: EventHashes
    corrects_version: int
    corrected_by_versions: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, position: _Optional[int] = ..., case_id: _Optional[str] = ..., version: _Optional[int] = ..., type: _Optional[str] = ..., topic: _Optional[str] = ..., class_version: _Optional[int] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., recorded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., payload_json: _Optional[str] = ..., hashes: _Optional[_Union[EventHashes, _Mapping]] = ..., corrects_version: _Optional[int] = ..., corrected_by_versions: _Optional[_Iterable[int]] = ...) -> None: ...

class EventHashes(_message.Message):
    __slots__ = ("previous", "chain")
    PREVIOUS_FIELD_NUMBER: _ClassVar[int]
    CHAIN_FIELD_NUMBER: _ClassVar[int]
    GLOBAL_FIELD_NUMBER: _ClassVar[int]
    previous: str
    chain: str
    def __init__(self, previous: _Optional[str] = ..., chain: _Optional[str] = ..., **kwargs) -> None: ...

class Verification(_message.Message):
    __slots__ = ("ok", "events", "cases", "first_position", "last_position", "checkpoints", "break_count", "breaks")
    OK_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    CASES_FIELD_NUMBER: _ClassVar[int]
    FIRST_POSITION_FIELD_NUMBER: _ClassVar[int]
    LAST_POSITION_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINTS_FIELD_NUMBER: _ClassVar[int]
    BREAK_COUNT_FIELD_NUMBER: _ClassVar[int]
    BREAKS_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    events: int
    cases: int
    first_position: int
    last_position: int
    checkpoints: int
    break_count: int
    breaks: _containers.RepeatedCompositeFieldContainer[ChainBreak]
    def __init__(self, ok: _Optional[bool] = ..., events: _Optional[int] = ..., cases: _Optional[int] = ..., first_position: _Optional[int] = ..., last_position: _Optional[int] = ..., checkpoints: _Optional[int] = ..., break_count: _Optional[int] = ..., breaks: _Optional[_Iterable[_Union[ChainBreak, _Mapping]]] = ...) -> None: ...

class ChainBreak(_message.Message):
    __slots__ = ("kind", "case_id", "version", "position", "expected", "found", "detail")
    KIND_FIELD_NUMBER: _ClassVar[int]
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_FIELD_NUMBER: _ClassVar[int]
    FOUND_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    kind: BreakKind
    case_id: str
    version: int
    position: int
    expected: str
    found: str
    detail: str
    def __init__(self, kind: _Optional[_Union[BreakKind, str]] = ..., case_id: _Optional[str] = ..., version: _Optional[int] = ..., position: _Optional[int] = ..., expected: _Optional[str] = ..., found: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...

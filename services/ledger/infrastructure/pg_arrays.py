"""One-dimensional PostgreSQL arrays sent in binary form, packed in one pass.

The append function and the batch read take their rows as parallel arrays (one per column).
psycopg's generic list dumper inspects every element to pick a type and, in text form, quotes each
one with a regular expression: for a group-commit batch's ten arrays that cost about 300 µs of
Python, more than the rest of the batch's database work. Wrapping a list in one of these types
tells psycopg the element type up front, and the dumper packs the binary array format directly.

No NULL elements: every column these carry is NOT NULL.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, cast

import psycopg
from psycopg.abc import AdaptContext, Buffer
from psycopg.adapt import Dumper, PyFormat
from psycopg.pq import Format

_HEADER = struct.Struct(">iiIii")  # dimensions, has nulls, element oid, length, lower bound
_EMPTY = struct.Struct(">iiI")  # no dimensions, no nulls, element oid
_LENGTH = struct.Struct(">i")
_INT8 = struct.Struct(">iq")  # each element: its length (8), its value


class TextArray(list[str]):
    """Sent as ``text[]``."""


class Int8Array(list[int]):
    """Sent as ``bigint[]``."""


class ByteaArray(list[bytes]):
    """Sent as ``bytea[]``."""


def _oids(name: str) -> tuple[int, int]:
    """The oids of the array of ``name`` and of ``name``."""
    info = psycopg.postgres.types.get(name)
    assert info is not None, name
    return info.array_oid, info.oid


def _packed(element_oid: int, elements: list[Buffer]) -> bytes:
    if not elements:
        return _EMPTY.pack(0, 0, element_oid)
    header = _HEADER.pack(1, 0, element_oid, len(elements), 1)
    return b"".join([header, *(_LENGTH.pack(len(e)) + e for e in elements)])


class _ArrayDumper(Dumper):
    format = Format.BINARY
    element_oid = 0


class TextArrayDumper(_ArrayDumper):
    oid, element_oid = _oids("text")

    def __init__(self, cls: type, context: AdaptContext | None = None) -> None:
        super().__init__(cls, context)
        # psycopg's own binary text dumper: the connection's encoding, as for any other string.
        adapters = psycopg.adapters if context is None else context.adapters
        text_dumper = adapters.get_dumper(str, PyFormat.BINARY)(str, context)
        self._dump_text = cast(Callable[[str], Buffer], text_dumper.dump)  # never None for a str

    def dump(self, obj: Any) -> bytes:
        dump_text = self._dump_text
        return _packed(self.element_oid, [dump_text(value) for value in obj])


class Int8ArrayDumper(_ArrayDumper):
    oid, element_oid = _oids("int8")

    def dump(self, obj: Any) -> bytes:
        if not obj:
            return _EMPTY.pack(0, 0, self.element_oid)
        header = _HEADER.pack(1, 0, self.element_oid, len(obj), 1)
        return b"".join([header, *(_INT8.pack(8, value) for value in obj)])


class ByteaArrayDumper(_ArrayDumper):
    oid, element_oid = _oids("bytea")

    def dump(self, obj: Any) -> bytes:
        return _packed(self.element_oid, obj)


# Every connection made after this import knows the three types (they are ours alone).
psycopg.adapters.register_dumper(TextArray, TextArrayDumper)
psycopg.adapters.register_dumper(Int8Array, Int8ArrayDumper)
psycopg.adapters.register_dumper(ByteaArray, ByteaArrayDumper)

"""Read a log into rows: CSV (plain or .gz) and XES (plain or .gz, stream-parsed).

Both yield one plain ``dict`` per event, column → text. An XES trace's attributes appear in each
of its events under ``case:`` + key (the names pm4py and the flattened CSVs use), so one mapping
fits a log whether it comes as XES or as CSV. The XES parser builds no tree: expat's callbacks
keep only the trace being read.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterator
from pathlib import Path
from typing import IO
from xml.parsers import expat

Row = dict[str, str]


class ReadShare:
    """How much of a log file its reader has taken in so far: 0.0 … 1.0 of the file's bytes
    (compressed bytes for a .gz), for an import's estimate of its total while it streams."""

    def __init__(self) -> None:
        self._raw: IO[bytes] | None = None
        self._size = 0

    def follow(self, raw: IO[bytes], size: int) -> None:
        self._raw, self._size = raw, size

    def __call__(self) -> float:
        if self._raw is None or self._raw.closed or not self._size:
            return 1.0 if self._raw is not None else 0.0
        return min(self._raw.tell() / self._size, 1.0)


def _open_binary(path: Path, share: ReadShare | None = None) -> IO[bytes]:
    raw = path.open("rb")
    if share is not None:
        share.follow(raw, path.stat().st_size)
    if raw.read(2) == b"\x1f\x8b":
        raw.seek(0)
        return gzip.GzipFile(fileobj=raw)  # type: ignore[return-value]
    raw.seek(0)
    return raw


def is_csv(path: Path) -> bool:
    suffixes = path.suffixes
    return bool(suffixes) and (suffixes[-1] == ".csv" or suffixes[-2:] == [".csv", ".gz"])


def reads_as_csv(path: Path, reader: str) -> bool:
    return is_csv(path) or reader == "csv"


def read_rows(path: Path, reader: str, share: ReadShare | None = None) -> Iterator[Row]:
    if reads_as_csv(path, reader):
        return read_csv(path, share)
    return read_xes(path, share=share)


def read_csv(path: Path, share: ReadShare | None = None) -> Iterator[Row]:
    with _open_binary(path, share) as binary:
        text = io.TextIOWrapper(binary, encoding="utf-8", newline="")
        yield from csv.DictReader(text)


_TRACE, _EVENT, _OTHER = 1, 2, 0


def _element_kind(name: str) -> int:
    local = name.rsplit(":", 1)[-1]
    return _TRACE if local == "trace" else _EVENT if local == "event" else _OTHER


def _key_and_value(attrs: list[str]) -> tuple[str, str] | None:
    """An attribute element's key and value from expat's flat attribute list (None: no key)."""
    named = dict(zip(attrs[::2], attrs[1::2], strict=True))
    return (named["key"], named.get("value", "")) if "key" in named else None


def read_xes(
    path: Path, chunk_size: int = 1 << 20, share: ReadShare | None = None
) -> Iterator[Row]:
    """Stream a log's events with expat's callbacks: no element tree is ever built."""
    # The log is the operator's own file; expat (2.4+) refuses entity-expansion bombs and never
    # fetches external entities.
    parser = expat.ParserCreate(namespace_separator=None)
    # Attributes as a flat [name, value, ...] list: no dict per element (a log has ~12 per event).
    parser.ordered_attributes = True
    ready: list[Row] = []
    trace: Row = {}
    events: list[Row] = []
    event: Row | None = None
    depth = 0  # element depth; attributes count only as direct children of a trace or event
    owner_depth = 0
    kinds: dict[str, int] = {}  # element name → _TRACE, _EVENT or _OTHER

    def start(name: str, attrs: list[str]) -> None:
        nonlocal depth, event, trace, owner_depth
        depth += 1
        kind = kinds.get(name)
        if kind is None:
            kind = kinds[name] = _element_kind(name)
        if kind == _EVENT:
            event, owner_depth = {}, depth
        elif kind == _TRACE:
            trace, owner_depth = {}, depth
        elif depth == owner_depth + 1 and attrs:
            if len(attrs) == 4 and attrs[0] == "key" and attrs[2] == "value":
                key, value = attrs[1], attrs[3]  # <string key="k" value="v"/>, nearly all
            elif (named := _key_and_value(attrs)) is not None:
                key, value = named
            else:
                return
            if event is not None:
                event[key] = value
            elif owner_depth:
                trace["case:" + key] = value

    def end(name: str) -> None:
        nonlocal depth, event, owner_depth
        kind = kinds[name]
        if kind == _EVENT and event is not None:
            events.append(event)
            event, owner_depth = None, depth - 1
        elif kind == _TRACE:
            ready.extend(trace | e for e in events)
            events.clear()
            owner_depth = 0
        depth -= 1

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    with _open_binary(path, share) as binary:
        while chunk := binary.read(chunk_size):
            parser.Parse(chunk, False)
            yield from ready
            ready.clear()
        parser.Parse(b"", True)
        yield from ready

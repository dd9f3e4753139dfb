"""Read a log into rows: CSV (plain or .gz) and XES (plain or .gz, stream-parsed).

Both yield one plain ``dict`` per event, column → text. An XES trace's attributes appear in each
of its events under ``case:`` + key (the names pm4py and the flattened CSVs use), so one mapping
fits a log whether it comes as XES or as CSV. The XES parser builds no tree: expat's callbacks
keep only the trace being read.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import itertools
import re
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


# The fast path (see ``read_xes``): a trace written the plain way, as every XES writer does — only
# <string|date|int|float|boolean|id key="…" value="…"/> attributes (no entity, no character that
# XML would normalise) and <event> elements holding only such attributes, whitespace between.
_PLAIN_ATTR = (
    r'<(?:string|date|int|float|boolean|id) key="[^"&<\t\n\r]*" value="[^"&<\t\n\r]*"[ \t\r\n]*/>'
)
_SPACE = r"[ \t\r\n]*"
_PLAIN_TRACE_BODY = re.compile(
    rf"(?:{_SPACE}(?:{_PLAIN_ATTR}|<event>(?:{_SPACE}{_PLAIN_ATTR})*{_SPACE}</event>))*{_SPACE}"
)
_KEY_VALUE = re.compile(r'<[a-z]+ key="([^"]*)" value="([^"]*)"')
_DECLARED_ENCODING = re.compile(
    rb'^(?:\xef\xbb\xbf)?<\?xml[^>]*encoding=["\']([A-Za-z0-9._-]+)["\']'
)
_OPENERS = (("<!--", "-->"), ("<![CDATA[", "]]>"), ("<?", "?>"))


def _plain_trace_rows(body: str) -> list[Row] | None:
    """The rows of a trace's text between <trace> and </trace>, if it is written the plain way
    (else None: expat reads it). The same rows, keys in the same order, as expat's callbacks."""
    if _PLAIN_TRACE_BODY.fullmatch(body) is None:
        return None
    parts = body.split("<event>")
    trace = {"case:" + key: value for key, value in _KEY_VALUE.findall(parts[0])}
    events = []
    for part in parts[1:]:
        inside, _, after = part.partition("</event>")
        events.append(dict(_KEY_VALUE.findall(inside)))
        trace.update(("case:" + key, value) for key, value in _KEY_VALUE.findall(after))
    return [trace | event for event in events]


def _ends_outside_markup(text: str) -> bool:
    """Whether ``text`` (starting outside any) ends outside comments, CDATA and processing
    instructions: the last opener of each kind is closed after it. DOCTYPE: never (it may
    declare default attributes), so expat reads that log whole."""
    if "<!DOCTYPE" in text:
        return False
    for opener, closer in _OPENERS:
        last = text.rfind(opener)
        if last >= 0 and text.find(closer, last + len(opener)) < 0:
            return False
    return True


def _utf8(head: bytes) -> bool:
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return False  # UTF-16
    declared = _DECLARED_ENCODING.match(head)
    return declared is None or declared.group(1).lower() in (b"utf-8", b"utf8")


class _Expat:
    """The expat reader: rows of the traces it is fed land in ``ready``."""

    def __init__(self) -> None:
        # The log is the operator's own file; expat (2.4+) refuses entity-expansion bombs and
        # never fetches external entities.
        parser = expat.ParserCreate(namespace_separator=None)
        # Attributes as a flat [name, value, ...] list: no dict per element (~12 per event).
        parser.ordered_attributes = True
        self.ready: list[Row] = []
        ready = self.ready
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

        def at_log_level() -> bool:
            """Whether a trace starting now would be a child of the log and hold the next rows."""
            return depth == 1 and event is None and owner_depth == 0 and not events

        parser.StartElementHandler = start
        parser.EndElementHandler = end
        self.feed = parser.Parse
        self.at_log_level = at_log_level


def read_xes(
    path: Path, chunk_size: int = 1 << 20, share: ReadShare | None = None
) -> Iterator[Row]:
    """Stream a log's events with expat's callbacks: no element tree is ever built.

    A UTF-8 log's traces written the plain way (``_plain_trace_rows``) skip the callbacks, the
    costliest step of an import per event: a regular expression checks the trace's whole text
    and reads its attributes. Only a trace that expat would find right under the log, outside
    any comment, CDATA or processing instruction, is read so; all the rest goes through expat.
    """
    reader = _Expat()
    with _open_binary(path, share) as binary:
        head = binary.read(max(chunk_size, 1024))  # enough to hold the XML declaration
        chunks = itertools.chain(
            (head[i : i + chunk_size] for i in range(0, len(head), chunk_size)),
            iter(lambda: binary.read(chunk_size), b""),
        )
        if not _utf8(head):
            for chunk in chunks:
                reader.feed(chunk, False)
                yield from reader.ready
                reader.ready.clear()
            reader.feed(b"", True)
            yield from reader.ready
            return
        decoder = codecs.getincrementaldecoder("utf-8-sig")()
        text, plain = "", True
        for chunk in itertools.chain(chunks, [b""]):
            final = not chunk
            text += decoder.decode(chunk, final)
            position, plain = _read_traces(reader, text, plain, final)
            text = text[position:]
            yield from reader.ready
            reader.ready.clear()
        reader.feed("", True)
        yield from reader.ready


def _read_traces(reader: _Expat, text: str, plain: bool, final: bool) -> tuple[int, bool]:
    """Read ``text``'s whole traces (the plain way where it may) and feed the rest to expat,
    keeping back what may begin a trace; return where to go on and whether to stay plain."""
    position = 0
    while plain:
        start = text.find("<trace>", position)
        end = text.find("</trace>", start) if start >= 0 else -1
        if end < 0:  # no whole trace left: keep its start, or the last markup's, for later
            keep = start if start >= 0 else text.rfind("<", position)
            if final or keep < 0:
                keep = len(text)
            plain = _ends_outside_markup(text[position:keep])
            reader.feed(text[position:keep], False)
            return keep, plain
        plain = _ends_outside_markup(text[position:start])
        reader.feed(text[position:start], False)
        rows = None
        if plain and reader.at_log_level():
            rows = _plain_trace_rows(text[start + 7 : end])
        if rows is None:  # expat reads it; its text too must end outside markup
            plain = plain and _ends_outside_markup(text[start : end + 8])
            reader.feed(text[start : end + 8], False)
        else:
            reader.ready.extend(rows)
        position = end + 8
    reader.feed(text[position:], False)
    return len(text), False

"""Traces written the plain way skip expat's callbacks: the rows stay exactly expat's (values,
keys and their order), whatever the log holds around them and wherever the chunks are cut."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from services.itsm import readers
from services.itsm.readers import Row, _Expat, read_xes

CHUNKS = [1, 2, 3, 5, 7, 13, 64, 1 << 20]

PLAIN = (
    '<trace>\n\t<string key="concept:name" value="{case}"/>\n'
    '\t<event>\n\t\t<string key="concept:name" value="Accepted"/>\n'
    '\t\t<date key="time:timestamp" value="2012-01-01T10:00:00+01:00"/>\n'
    '\t\t<string key="org:resource" value="Ann > Bo\'s"/>\n\t</event>\n'
    '\t<event><string key="concept:name" value="Queued"/><int key="n" value="1" /></event>\n'
    '\t<string key="late" value="after the events"/>\n</trace>\n'
)

ODD_TRACES = [
    # an entity, a tab and a newline in values: expat unescapes and normalises them
    '<trace><string key="concept:name" value="ent"/><event>'
    '<string key="r" value="A &amp; B"/><string key="t" value="a\tb\nc"/></event></trace>',
    # single quotes, attributes in the other order, an attribute on the event element
    "<trace><string key='concept:name' value='quoted'/><event id=\"e\">"
    '<string value="v" key="k"/></event></trace>',
    # a comment, text and CDATA inside the trace (the comment holds a fake end of trace)
    '<trace><string key="concept:name" value="marked"/><!-- </trace> -->'
    '<event>text<string key="k" value="v"/><![CDATA[ <event> ]]></event></trace>',
    # nested attributes, a list
    '<trace><string key="concept:name" value="nested"/><event>'
    '<list key="l"><values><string key="inner" value="x"/></values></list>'
    '<string key="k" value="v"><string key="child" value="y"/></string></event></trace>',
    # a trace inside another element is not a child of the log
    '<string key="wrapper" value="w"><trace><string key="concept:name" value="inner"/>'
    '<event><string key="k" value="v"/></event></trace></string>',
]

AROUND = [
    # fake traces in a comment, in CDATA and in a processing instruction between real ones
    '<!-- <trace><event><string key="k" value="comment"/></event></trace> -->',
    '<?pi <trace><event><string key="k" value="pi"/></event></trace> ?>',
    '<string key="log-level" value="not a trace attribute"/>',
]


def log(*parts: str, prolog: str = '<?xml version="1.0" encoding="UTF-8"?>\n') -> str:
    return (
        prolog
        + '<!-- a comment before the log -->\n<log xmlns="http://www.xes-standard.org/">\n'
        + '<global scope="event"><string key="org:group" value="UNKNOWN"/></global>\n'
        + "\n".join(parts)
        + "\n</log>\n"
    )


def expat_only(data: bytes) -> list[list[tuple[str, str]]]:
    reader = _Expat()
    reader.feed(data, True)
    return [list(row.items()) for row in reader.ready]


def rows(path: Path, chunk_size: int) -> list[list[tuple[str, str]]]:
    return [list(row.items()) for row in read_xes(path, chunk_size=chunk_size)]


@pytest.mark.parametrize(
    "text",
    [
        log(*(PLAIN.format(case=f"c{i}") for i in range(3))),
        log(PLAIN.format(case="a"), *ODD_TRACES, PLAIN.format(case="b")),
        log(PLAIN.format(case="a"), *AROUND, PLAIN.format(case="b"), *AROUND),
        log(*AROUND, *ODD_TRACES, *(PLAIN.format(case=f"c{i}") for i in range(2))),
        # a comment left open across traces hides them from expat
        log(PLAIN.format(case="a"), "<!--", PLAIN.format(case="hidden"), "-->", PLAIN.format(case="b")),
        # CDATA is only allowed in elements: inside a log-level attribute's text
        log('<string key="x" value="y"><![CDATA[', PLAIN.format(case="hidden"), "]]></string>",
            PLAIN.format(case="b")),
        # a DOCTYPE may give attributes defaults: expat reads such a log whole
        log(PLAIN.format(case="a"), prolog='<?xml version="1.0"?>\n<!DOCTYPE log [\n'
            '<!ATTLIST string value CDATA "defaulted">\n]>\n'),
        log(PLAIN.format(case="é → ü")),
    ],
)  # fmt: skip
def test_rows_equal_expats_alone_at_every_chunk_size(tmp_path: Path, text: str) -> None:
    data = text.encode()
    expected = expat_only(data)
    assert expected  # each log has rows
    for name, content in (("log.xes", data), ("log.xes.gz", gzip.compress(data))):
        path = tmp_path / name
        path.write_bytes(content)
        for chunk_size in CHUNKS:
            assert rows(path, chunk_size) == expected, (name, chunk_size)


def test_a_log_in_another_encoding_is_read_by_expat(tmp_path: Path) -> None:
    text = log(
        PLAIN.format(case="caf\u00e9"), prolog='<?xml version="1.0" encoding="ISO-8859-1"?>\n'
    )
    path = tmp_path / "latin1.xes"
    path.write_bytes(text.encode("latin-1"))
    found: list[Row] = list(read_xes(path, chunk_size=7))
    assert [row["case:concept:name"] for row in found] == ["caf\u00e9", "caf\u00e9"]
    assert [list(row.items()) for row in found] == expat_only(text.encode("latin-1"))


def test_plain_traces_skip_expat_and_odd_ones_do_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    read_plainly: list[str] = []

    def spy(body: str) -> list[Row] | None:
        found = plain_trace_rows(body)
        if found is not None:
            read_plainly.extend(row["case:concept:name"] for row in found)
        return found

    plain_trace_rows = readers._plain_trace_rows
    monkeypatch.setattr(readers, "_plain_trace_rows", spy)
    path = tmp_path / "log.xes"
    odd, marked = [t for t in ODD_TRACES if "marked" not in t], ODD_TRACES[2]
    path.write_text(
        log(PLAIN.format(case="a"), *odd, PLAIN.format(case="b"), *AROUND, marked,
            PLAIN.format(case="c"))
    )  # fmt: skip
    cases = [row["case:concept:name"] for row in read_xes(path, chunk_size=5)]
    # Once a comment or instruction may hide a trace's start or end (here they hold "<trace>"
    # and "</trace>"), expat reads the rest of the log.
    assert read_plainly == ["a", "a", "b", "b"]  # two events each
    assert cases == ["a", "a", "ent", "quoted", "nested", "inner", "b", "b", "marked", "c", "c"]
    assert [list(r.items()) for r in read_xes(path)] == expat_only(path.read_bytes())

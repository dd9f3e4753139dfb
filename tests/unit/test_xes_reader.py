"""The streaming XES reader: one row per event, the trace's attributes under ``case:``."""

from __future__ import annotations

import gzip
from pathlib import Path

from services.itsm.readers import read_xes

LOG = """<?xml version="1.0" encoding="UTF-8"?>
<log xes.version="1.0" xmlns="http://www.xes-standard.org/">
  <extension name="Concept" prefix="concept" uri="http://www.xes-standard.org/concept.xesext"/>
  <global scope="event"><string key="org:group" value="UNKNOWN"/></global>
  <string key="concept:name" value="the log, not a trace"/>
  <trace>
    <string key="concept:name" value="case-1"/>
    <event>
      <string key="concept:name" value="Accepted"/>
      <date value="2012-01-01T10:00:00+01:00" key="time:timestamp"/>
      <string key="org:resource" value="Ann &amp; Bo &lt;L2&gt;"/>
      <list key="nested">
        <values><string key="inner" value="not an event attribute"/></values>
      </list>
      <string key="impact" value="High" extra="ignored"/>
    </event>
    <xes:string xmlns:xes="http://www.xes-standard.org/" key="late" value="after an event"/>
    <event>
      <string key="concept:name" value="Completed"/>
      <int key="concept:name:ignored-order" value="7"/>
    </event>
  </trace>
  <trace>
    <string key="concept:name" value="case-2"/>
    <event><string key="concept:name" value="Queued"/><string key="novalue"/></event>
  </trace>
</log>
"""


def test_rows_carry_event_and_trace_attributes_and_ignore_nested_and_log_level_ones(
    tmp_path: Path,
) -> None:
    for path, write in ((tmp_path / "log.xes", Path.write_bytes),
                        (tmp_path / "log.xes.gz", lambda p, b: p.write_bytes(gzip.compress(b)))):  # fmt: skip
        write(path, LOG.encode())
        assert list(read_xes(path, chunk_size=64)) == [
            {
                "case:concept:name": "case-1",
                "case:late": "after an event",
                "concept:name": "Accepted",
                "time:timestamp": "2012-01-01T10:00:00+01:00",
                "org:resource": "Ann & Bo <L2>",
                "nested": "",
                "impact": "High",
            },
            {
                "case:concept:name": "case-1",
                "case:late": "after an event",
                "concept:name": "Completed",
                "concept:name:ignored-order": "7",
            },
            {"case:concept:name": "case-2", "concept:name": "Queued", "novalue": ""},
        ]

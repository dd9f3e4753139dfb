"""The binary array parameters of the append and batch-read statements read back exactly."""

from __future__ import annotations

import psycopg
import pytest

from services.ledger.infrastructure.pg_arrays import ByteaArray, Int8Array, TextArray
from services.ledger.infrastructure.postgres_url import parse_postgres_url

AWKWARD_TEXT = ["plain", "", 'quote " and \\ backslash', "{braces},commas", "NULL", "ünï ✓\nline"]


@pytest.mark.parametrize("client_encoding", ["UTF8", "LATIN9"])
def test_arrays_arrive_as_sent(postgres_url: str, client_encoding: str) -> None:
    with psycopg.connect(parse_postgres_url(postgres_url).conninfo()) as conn:
        conn.execute(f"SET client_encoding = '{client_encoding}'")
        text = AWKWARD_TEXT if client_encoding == "UTF8" else [*AWKWARD_TEXT[:-1], "ünï"]
        row = conn.execute(
            "SELECT %s::text[], %s::bigint[], %s::bytea[], cardinality(%s::text[]), "
            "pg_typeof(%s)::text",
            [
                TextArray(text),
                Int8Array([0, -1, 2**63 - 1, -(2**63)]),
                ByteaArray([b"\x00\\x01", b"", bytes(range(256))]),
                TextArray(),
                Int8Array([7]),
            ],
        ).fetchone()
    assert row == (
        text,
        [0, -1, 2**63 - 1, -(2**63)],
        [b"\x00\\x01", b"", bytes(range(256))],
        0,
        "bigint[]",
    )

"""A thin, portable connection to the read-model database: SQLite (embedded) or PostgreSQL.

Statements are written once with ``?`` placeholders; for PostgreSQL they become ``%s``. Read
models live apart from the events: their own SQLite file, or their own PostgreSQL schema.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

import psycopg
from psycopg import sql

from services.ledger.application.errors import StoreUnavailable
from services.ledger.infrastructure.postgres_url import parse_postgres_url


@dataclass(frozen=True, slots=True)
class TableShape:
    """A table's columns (names and SQL types, in order) and how many leading ones are its key."""

    name: str
    columns: tuple[str, ...]
    types: tuple[str, ...]
    key_width: int  # 0: no key, rows are only ever appended


class Cursor(Protocol):
    def execute(self, statement: str, params: Sequence[Any] = ()) -> Any: ...

    def executemany(self, statement: str, rows: Sequence[Sequence[Any]]) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def fetchone(self) -> Any: ...

    def delete_where_in(self, table: str, column: str, values: Sequence[Any]) -> None:
        """DELETE every row of ``table`` whose ``column`` is one of ``values``."""
        ...

    def upsert_rows(
        self, table: str, shape: TableShape, rows: Sequence[Sequence[Any]], *, stored: int
    ) -> None:
        """Write rows (full width); each of the first ``stored`` replaces the stored row with its
        key, the others are new."""
        ...

    def pipeline(self, rows: int) -> AbstractContextManager[Any]:
        """Around writes of up to ``rows`` rows per table: send them without waiting for each
        statement's answer where the database can (PostgreSQL, few rows: lower latency)."""
        ...


class _SqliteCursor:
    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    def execute(self, statement: str, params: Sequence[Any] = ()) -> Any:
        return self._cursor.execute(statement, params)

    def executemany(self, statement: str, rows: Sequence[Sequence[Any]]) -> Any:
        return self._cursor.executemany(statement, rows)

    def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    def fetchone(self) -> Any:
        return self._cursor.fetchone()

    def delete_where_in(self, table: str, column: str, values: Sequence[Any]) -> None:
        self._cursor.executemany(f"DELETE FROM {table} WHERE {column} = ?", [(v,) for v in values])  # noqa: S608

    def upsert_rows(
        self, table: str, shape: TableShape, rows: Sequence[Sequence[Any]], *, stored: int
    ) -> None:
        if rows:
            marks = ", ".join("?" for _ in shape.columns)
            self._cursor.executemany(
                f"INSERT INTO {table} VALUES ({marks}){_on_conflict(shape)}",  # noqa: S608
                rows,
            )

    def pipeline(self, rows: int) -> AbstractContextManager[Any]:
        return nullcontext()


# Up to this many rows per table, one statement per table taking its rows as a JSON parameter
# (encoded in C; pipelined: one round trip for the whole batch) answers sooner than COPY, which
# needs round trips of its own per table; beyond it COPY is cheaper for the server.
PIPELINE_ROWS = 100


def _on_conflict(shape: TableShape) -> str:
    if not shape.key_width:
        return ""
    keys = ", ".join(shape.columns[: shape.key_width])
    values = ", ".join(f"{c} = excluded.{c}" for c in shape.columns[shape.key_width :])
    return f" ON CONFLICT ({keys}) DO UPDATE SET {values}"


@cache
def _json_upsert(table: str, shape: TableShape) -> str:
    """INSERT (or update by key) the rows of one JSON array of arrays, columns in table order."""
    columns = ", ".join(f"(r->>{i})::{t}" for i, t in enumerate(shape.types))
    return (
        f"INSERT INTO {table} SELECT {columns} "  # noqa: S608
        f"FROM json_array_elements(%s::json) AS r{_on_conflict(shape)}"
    )


class _PgCursor:
    def __init__(self, cursor: psycopg.Cursor[Any]) -> None:
        self._cursor = cursor

    def delete_where_in(self, table: str, column: str, values: Sequence[Any]) -> None:
        if values:
            self._cursor.execute(
                sql.SQL("DELETE FROM {} WHERE {} = ANY(%s)").format(
                    sql.Identifier(table), sql.Identifier(column)
                ),
                [list(values)],
            )

    def upsert_rows(
        self, table: str, shape: TableShape, rows: Sequence[Sequence[Any]], *, stored: int
    ) -> None:
        if len(rows) <= PIPELINE_ROWS:
            if rows:  # keys are unique within one call, as one statement's ON CONFLICT needs
                self._cursor.execute(_json_upsert(table, shape), [json.dumps(rows)])
            return
        # Delete what the stored rows' keys name, then COPY everything in: COPY is by far the
        # cheapest way in for the client (rows are encoded in C) and for the server.
        if stored:
            keys = shape.columns[: shape.key_width]
            arrays = ", ".join(f"%b::{t}[]" for t in shape.types[: shape.key_width])
            matches = " AND ".join(f"t.{k} = s.{k}" for k in keys)
            self._cursor.execute(
                f"DELETE FROM {table} AS t USING unnest({arrays}) AS s({', '.join(keys)}) "  # noqa: S608
                f"WHERE {matches}",
                [list(c) for c in zip(*(r[: shape.key_width] for r in rows[:stored]), strict=True)],
            )
        if rows:
            with self._cursor.copy(
                sql.SQL("COPY {} FROM STDIN (FORMAT BINARY)").format(sql.Identifier(table))
            ) as copy:
                copy.set_types(list(shape.types))
                for row in rows:
                    copy.write_row(row)

    def pipeline(self, rows: int) -> AbstractContextManager[Any]:
        return self._cursor.connection.pipeline() if rows <= PIPELINE_ROWS else nullcontext()

    def execute(self, statement: str, params: Sequence[Any] = ()) -> Any:
        return self._cursor.execute(statement.replace("?", "%s"), params)

    def executemany(self, statement: str, rows: Sequence[Sequence[Any]]) -> Any:
        return self._cursor.executemany(statement.replace("?", "%s"), rows)

    def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    def fetchone(self) -> Any:
        return self._cursor.fetchone()


class ReadModelDatabase:
    """Opens transactions on the read-model database; one writer, any number of readers."""

    def __init__(self, url: str) -> None:
        self.url = url
        parts = urlsplit(url)
        self.is_postgres = parts.scheme in ("postgresql", "postgres")
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._opened: list[Any] = []  # every thread's connection, so close() reaches them all
        self._opened_lock = threading.Lock()
        if self.is_postgres:
            postgres = parse_postgres_url(url)  # several hosts and libpq options included
            self.schema = postgres.params.get("schema", "readmodels")
            self._conninfo = postgres.conninfo()
            with psycopg.connect(self._conninfo, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema))
                )
        elif parts.scheme == "sqlite":
            path = unquote(parts.path)
            if path.startswith("/./"):
                path = path[1:]
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._path = path
            self.schema = ""
        else:
            raise ValueError(f"unsupported read-model URL {url!r}")

    def _connection(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None or (self.is_postgres and conn.closed):
            if self.is_postgres:
                conn = psycopg.connect(self._conninfo, autocommit=False)
                conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
                # Read models are derived and move together with their tracking row, so a commit
                # need not wait for its WAL flush: a server crash can only lose the last few
                # batches *and* their position together, and the projector does them again.
                conn.execute("SET synchronous_commit TO off")
                conn.commit()
            else:
                conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
            with self._opened_lock:
                self._opened.append(conn)
        return conn

    @contextmanager
    def transaction(self, *, write: bool = False) -> Iterator[Cursor]:
        """One transaction: committed on success, rolled back on error (and always, for reads)."""
        conn = self._connection()
        if write:
            self._write_lock.acquire()
        try:
            if self.is_postgres:
                try:
                    with conn.cursor() as cursor:
                        yield _PgCursor(cursor)
                    if write:
                        conn.commit()
                    else:
                        conn.rollback()
                except BaseException:
                    conn.rollback()
                    raise
            else:
                cursor = _SqliteCursor(conn.cursor())
                cursor.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    yield cursor
                    cursor.execute("COMMIT" if write else "ROLLBACK")
                except BaseException:
                    cursor.execute("ROLLBACK")
                    raise
        finally:
            if write:
                self._write_lock.release()

    @contextmanager
    def reading(self) -> Iterator[Cursor]:
        """A read-only transaction for queries: an unreachable database is StoreUnavailable.

        Queries answer callers, who should see UNAVAILABLE and retry, not UNKNOWN. The projector's
        own transactions keep the driver's errors, which its leadership loop handles.
        """
        try:
            with self.transaction() as cursor:
                yield cursor
        except (psycopg.OperationalError, psycopg.InterfaceError, sqlite3.OperationalError) as exc:
            if isinstance(exc, sqlite3.OperationalError) and "unable to open" not in str(exc):
                raise
            self._forget_connection()
            raise StoreUnavailable(f"the read-model database is unavailable: {exc}") from exc

    def _forget_connection(self) -> None:
        """Drop this thread's broken connection, so the next call connects afresh."""
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None and self.is_postgres:
            conn.close()

    def close(self) -> None:
        with self._opened_lock:
            opened, self._opened = self._opened, []
        for conn in opened:
            conn.close()
        self._local = threading.local()

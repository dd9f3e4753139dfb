"""A thin, portable connection to the read-model database: SQLite (embedded) or PostgreSQL.

Statements are written once with ``?`` placeholders; for PostgreSQL they become ``%s``. Read
models live apart from the events: their own SQLite file, or their own PostgreSQL schema.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

import psycopg
from psycopg import sql

from services.ledger.infrastructure.postgres_url import parse_postgres_url


class Cursor(Protocol):
    def execute(self, statement: str, params: Sequence[Any] = ()) -> Any: ...

    def executemany(self, statement: str, rows: Sequence[Sequence[Any]]) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def fetchone(self) -> Any: ...

    def delete_where_in(self, table: str, column: str, values: Sequence[Any]) -> None:
        """DELETE every row of ``table`` whose ``column`` is one of ``values``."""
        ...

    def insert_rows(self, table: str, rows: Sequence[Sequence[Any]]) -> None:
        """Append rows (full width, in column order) to ``table`` as fast as the database allows."""
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

    def insert_rows(self, table: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            marks = ", ".join("?" for _ in rows[0])
            self._cursor.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)  # noqa: S608


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

    def insert_rows(self, table: str, rows: Sequence[Sequence[Any]]) -> None:
        # COPY is PostgreSQL's fastest way in; a read-model batch writes thousands of rows.
        if rows:
            with self._cursor.copy(
                sql.SQL("COPY {} FROM STDIN").format(sql.Identifier(table))
            ) as copy:
                for row in rows:
                    copy.write_row(row)

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

    def close(self) -> None:
        with self._opened_lock:
            opened, self._opened = self._opened, []
        for conn in opened:
            conn.close()
        self._local = threading.local()

"""``postgresql://`` URLs as the ledger takes them, including several hosts for failover.

``postgresql://USER[:PASS]@HOST1:PORT1,HOST2:PORT2/DB?target_session_attrs=read-write&schema=S``
names every PostgreSQL that may be the primary; libpq tries them in turn and, with
``target_session_attrs=read-write``, keeps only the one that accepts writes. After a failover
new connections therefore find the promoted standby by themselves.

Query parameters are of two kinds: ``schema`` and ``lock_timeout`` are the ledger's own, the
others (``target_session_attrs``, ``connect_timeout``, ``sslmode``…) go to libpq unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit

import psycopg

# Query parameters the ledger reads itself; libpq would refuse them.
LEDGER_PARAMS = frozenset({"schema", "lock_timeout"})


@dataclass(frozen=True)
class PostgresUrl:
    hosts: tuple[str, ...]
    ports: tuple[str, ...]
    dbname: str
    user: str
    password: str
    params: dict[str, str] = field(default_factory=dict)

    @property
    def host_list(self) -> str:
        """Hosts as libpq's ``host`` takes them: comma-separated."""
        return ",".join(self.hosts)

    @property
    def port_list(self) -> str:
        return ",".join(self.ports)

    def libpq_options(self) -> dict[str, str]:
        """The query parameters meant for libpq (e.g. ``target_session_attrs``).

        ``connect_timeout`` defaults to 5 s: without it, a host that drops packets would hold a
        connection attempt (and the failover to the next host) for minutes.
        """
        passed = {k: v for k, v in self.params.items() if k not in LEDGER_PARAMS}
        return {"connect_timeout": "5"} | passed

    def conninfo(self, **overrides: str) -> str:
        """A libpq connection string for this URL (every host, libpq options included)."""
        return psycopg.conninfo.make_conninfo(
            dbname=self.dbname,
            host=self.host_list,
            port=self.port_list,
            user=self.user,
            password=self.password,
            **(self.libpq_options() | overrides),
        )


def parse_postgres_url(url: str) -> PostgresUrl:
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ValueError(f"not a PostgreSQL URL: {url!r}")
    credentials, _, hostlist = parts.netloc.rpartition("@")
    user, _, password = credentials.partition(":")
    hosts: list[str] = []
    ports: list[str] = []
    for item in (hostlist or "127.0.0.1").split(","):
        host, port = _host_and_port(item)
        hosts.append(host or "127.0.0.1")
        ports.append(port or "5432")
    return PostgresUrl(
        hosts=tuple(hosts),
        ports=tuple(ports),
        dbname=unquote(parts.path.lstrip("/")) or "postgres",
        user=unquote(user) or "postgres",
        password=unquote(password),
        params=dict(parse_qsl(parts.query)),
    )


def _host_and_port(item: str) -> tuple[str, str]:
    if item.startswith("["):  # [IPv6]:port
        host, _, rest = item[1:].partition("]")
        return host, rest.removeprefix(":")
    host, _, port = item.partition(":")
    return unquote(host), port

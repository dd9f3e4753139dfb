"""One typed settings object for every ledger process: environment (LEDGER_*) and command line."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.ledger.application.validation import Limits
from services.projector.queries import OverstayTargets


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LEDGER_", extra="ignore")

    database_url: str = Field(
        "sqlite:///./var/ledger.sqlite",
        description="sqlite:///PATH (embedded default) or postgresql://USER@HOST:PORT/DB",
    )
    host: str = Field("0.0.0.0", description="address the gRPC server listens on")  # noqa: S104
    port: int = Field(50051, ge=0, le=65535, description="gRPC port; 0 picks a free one")
    max_workers: int = Field(
        32,
        ge=1,
        description="gRPC worker threads (unary calls and streams); a call waiting for its group "
        "commit holds one, so this also bounds the batch size",
    )
    processes: int = Field(
        1,
        ge=1,
        description="`ledger serve` processes sharing the port (SO_REUSEPORT), each with its own "
        "group-commit writer; PostgreSQL only; the first one also runs the projector",
    )
    grace_seconds: float = Field(10.0, ge=0, description="how long in-flight calls get on SIGTERM")
    max_clock_skew_seconds: float = Field(
        300.0, ge=0, description="how far in the future occurred_at may be"
    )
    max_batch_commands: int = Field(1000, ge=1, description="commands in one ExecuteBatch")
    import_batch_commands: int = Field(
        2000, ge=1, description="commands per transaction on the ImportEvents stream"
    )
    max_id_length: int = Field(128, ge=1, description="longest case, command, agent or group id")
    max_note_length: int = Field(4096, ge=1, description="longest note, reason or resolution code")
    read_limit: int = Field(1000, ge=1, description="most events one read or stream message holds")
    aggregate_cache_size: int = Field(10_000, ge=0, description="cases kept in memory per process")
    readmodel_url: str = Field(
        "",
        description="read-model database; default: var/readmodels.sqlite beside a SQLite ledger, "
        "schema 'readmodels' in a PostgreSQL ledger's database",
    )
    services: str = Field(
        "ledger,query,projector",
        description="what `ledger serve` runs in this process: any of ledger, query, projector",
    )
    group_commit_max_batch: int = Field(
        256, ge=1, description="most concurrent commands written in one transaction"
    )
    group_commit_writers: int = Field(
        1,
        ge=1,
        description="group-commit writer threads per process; more overlap one batch's reading "
        "and deciding with another's commit, which pays only where CPU is spare: on 2 shared "
        "cores one writer makes batches twice as large for a third less CPU per command",
    )
    group_commit_linger_us: float = Field(
        200.0,
        ge=0,
        description="how long a batch waits for stragglers when callers are concurrent (µs)",
    )
    projector_batch_size: int = Field(1000, ge=1, description="most events per projector commit")
    projector_leader_poll_seconds: float = Field(
        1.0,
        gt=0,
        description="how often a standby projector tries to take the leader lock (PostgreSQL)",
    )
    metrics_port: int | None = Field(
        None, ge=0, le=65535, description="Prometheus /metrics port (0 picks one); none when unset"
    )
    health_check_seconds: float = Field(
        2.0, gt=0, description="how often readiness (database, projector lag) is re-checked"
    )
    max_projector_lag_seconds: float = Field(
        60.0,
        ge=0,
        description="the QueryService reports NOT_SERVING while the oldest event not yet "
        "projected is older than this",
    )
    overstay_targets: dict[str, float] = Field(
        default_factory=lambda: {"default": 8 * 3600.0},
        description='seconds a tenure may last, by "group:ID", "tier:L1" or "default"',
    )

    @property
    def pool_size(self) -> int:
        # One connection per worker thread, plus one for reads that run beside them.
        return self.max_workers + 1

    def resolved_readmodel_url(self) -> str:
        if self.readmodel_url:
            return self.readmodel_url
        parts = urlsplit(self.database_url)
        if parts.scheme == "sqlite":
            folder = parts.path.rsplit("/", 1)[0] or "/."
            return f"sqlite://{folder}/readmodels.sqlite"
        params = [p for p in parts.query.split("&") if p]
        ledger_schema = next((p[7:] for p in params if p.startswith("schema=")), "")
        kept = [p for p in params if not p.startswith("schema=")]
        schema = f"{ledger_schema}_readmodels" if ledger_schema else "readmodels"
        return urlunsplit(parts._replace(query="&".join([*kept, f"schema={schema}"])))

    def runs(self, service: str) -> bool:
        return service in {s.strip() for s in self.services.split(",")}

    def overstay(self) -> OverstayTargets:
        targets = {k: timedelta(seconds=v) for k, v in self.overstay_targets.items()}
        return OverstayTargets(
            default=targets.get("default", timedelta(hours=8)),
            by_group={k[6:]: v for k, v in targets.items() if k.startswith("group:")},
            by_tier={k[5:]: v for k, v in targets.items() if k.startswith("tier:")},
        )

    def limits(self) -> Limits:
        return Limits(
            max_id_length=self.max_id_length,
            max_note_length=self.max_note_length,
            max_future_skew=timedelta(seconds=self.max_clock_skew_seconds),
            max_batch_commands=self.max_batch_commands,
        )

"""The gRPC server: ledger service, standard health service, reflection, graceful stop."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from ownership.v1 import ledger_pb2, ledger_pb2_grpc
from services.ledger.api.servicer import LedgerServicer

SERVICE_NAME = ledger_pb2.DESCRIPTOR.services_by_name["LedgerService"].full_name

# Clients may retry UNAVAILABLE safely: every command carries an idempotency key, so a retry of a
# command that did commit gets the original answer instead of a second write.
CLIENT_SERVICE_CONFIG = json.dumps(
    {
        "methodConfig": [
            {
                "name": [{"service": SERVICE_NAME}],
                "retryPolicy": {
                    "maxAttempts": 4,
                    "initialBackoff": "0.1s",
                    "maxBackoff": "2s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    }
)


def channel(target: str) -> grpc.Channel:
    """A client channel with the ledger's retry policy."""
    return grpc.insecure_channel(
        target,
        options=[("grpc.service_config", CLIENT_SERVICE_CONFIG), ("grpc.enable_retries", 1)],
    )


class LedgerServer:
    """A gRPC server with health and reflection, to which the process adds its services."""

    def __init__(
        self,
        host: str,
        port: int,
        max_workers: int,
        interceptors: Sequence[grpc.ServerInterceptor] = (),  # type: ignore[type-arg]
    ) -> None:
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="rpc"),
            interceptors=list(interceptors),
            maximum_concurrent_rpcs=max_workers * 4,
        )
        self.health = health.HealthServicer(experimental_non_blocking=True)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.service_names: list[str] = []
        self.port = self.server.add_insecure_port(f"{host}:{port}")

    def add_service(self, name: str, register: Callable[[grpc.Server], None]) -> None:
        register(self.server)
        self.service_names.append(name)

    def add_ledger(self, servicer: LedgerServicer) -> None:
        self.add_service(
            SERVICE_NAME,
            lambda server: ledger_pb2_grpc.add_LedgerServiceServicer_to_server(servicer, server),
        )

    def start(self) -> None:
        reflection.enable_server_reflection(
            (*self.service_names, health.SERVICE_NAME, reflection.SERVICE_NAME), self.server
        )
        self.server.start()
        for name in (*self.service_names, ""):
            self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

    def stop(self, grace: float) -> None:
        """Refuse new calls, let in-flight ones finish within ``grace`` seconds, then stop."""
        self.health.enter_graceful_shutdown()
        self.server.stop(grace).wait()

    def wait(self) -> None:
        self.server.wait_for_termination()

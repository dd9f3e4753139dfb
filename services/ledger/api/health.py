"""Readiness: the health service's status per service, re-checked in the background.

The server-wide status ("") means "the process is alive" and stays SERVING until shutdown (use
it for liveness: restarting does not cure a database outage). Each service's own status is its
readiness: NOT_SERVING while a check fails — the ledger's when its database is unreachable, the
QueryService's also while the projector lags beyond the allowed time.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping

from grpc_health.v1 import health, health_pb2

log = logging.getLogger(__name__)

# A check returns None when the service is ready, else why it is not.
Check = Callable[[], str | None]


class HealthMonitor:
    def __init__(
        self, servicer: health.HealthServicer, checks: Mapping[str, Check], interval: float
    ) -> None:
        self._servicer = servicer
        self._checks = dict(checks)
        self._interval = interval
        self._stop = threading.Event()
        self._ready: dict[str, bool] = {}
        self._thread = threading.Thread(target=self._run, name="health", daemon=True)

    def start(self) -> None:
        if self._checks:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def check_once(self) -> None:
        for service, check in self._checks.items():
            try:
                problem = check()
            except Exception as error:  # an unreachable database raises; that is the answer
                problem = f"{type(error).__name__}: {error}"
            ready = problem is None
            if self._stop.is_set():
                return  # the server is stopping: its own shutdown sets NOT_SERVING
            if self._ready.get(service) != ready:
                self._ready[service] = ready
                status = health_pb2.HealthCheckResponse
                self._servicer.set(service, status.SERVING if ready else status.NOT_SERVING)
                if ready:
                    log.info("%s is ready", service, extra={"fields": {"service": service}})
                else:
                    log.warning(
                        "%s is not ready: %s",
                        service,
                        problem,
                        extra={"fields": {"service": service, "problem": problem}},
                    )

    def _run(self) -> None:
        while not self._stop.is_set():
            self.check_once()
            self._stop.wait(self._interval)

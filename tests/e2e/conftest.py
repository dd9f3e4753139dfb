"""A real ledger server on a port-0 socket, and a client stub talking to it over gRPC."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from ownership.v1 import ledger_pb2_grpc
from services.bootstrap import Ledger, build_ledger
from services.ledger.api.server import channel
from services.settings import Settings

# The shared helpers in tests/e2e/wire.py assert too: pytest explains their failures as it does
# the tests' own.
pytest.register_assert_rewrite("tests.e2e.wire")


def start_ledger(database_url: str, **overrides: object) -> Ledger:
    settings = Settings(database_url=database_url, host="127.0.0.1", port=0, **overrides)
    return build_ledger(settings).start()


@pytest.fixture
def ledger(database_url: str) -> Iterator[Ledger]:
    running = start_ledger(database_url)
    yield running
    running.stop(grace=1)


@pytest.fixture
def grpc_channel(ledger: Ledger) -> Iterator[grpc.Channel]:
    with channel(f"127.0.0.1:{ledger.server.port}") as chan:
        yield chan


@pytest.fixture
def stub(grpc_channel: grpc.Channel) -> ledger_pb2_grpc.LedgerServiceStub:
    return ledger_pb2_grpc.LedgerServiceStub(grpc_channel)

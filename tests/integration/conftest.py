"""The stack of the events-feed and webhook suites (CONTRACT §13): private networks allowed (the
receivers listen on loopback), a short retry schedule and timeout, a short SSE heartbeat."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness import Stack

WEBHOOK_ENV = {
    "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
    "WEBHOOK_RETRY_SCHEDULE_S": "0.2,0.2",
    "WEBHOOK_TIMEOUT_S": "1",
    "SSE_HEARTBEAT_S": "0.5",
}


@pytest.fixture(scope="session")
def webhook_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = Stack(tmp_path_factory.mktemp("webhooks"), env=WEBHOOK_ENV).start()
    yield running
    running.stop()
    assert running.leaked_lines() == []

"""Shared fixtures: the running stack, HTTP clients, and the rule about missing tools —
outside CI a suite that needs Docker, Chromium, Node, PostgreSQL or Redis is skipped with its reason;
with CI=true a missing tool is a failure."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests import postgres, redis_server
from tests.harness import Stack
from tests.redis_server import RedisServer
from tests.webhook_receiver import Receiver, receiving

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_tool(available: bool, reason: str) -> None:
    """Skip (outside CI) or fail (in CI) a test whose tool is missing."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


def require_executable(name: str) -> str:
    path = shutil.which(name)
    require_tool(path is not None, f"`{name}` is not installed")
    assert path is not None
    return path


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """One throw-away PostgreSQL cluster for the session; tests make their own databases on it
    (tests.postgres.create_database)."""
    require_tool(postgres.available(), "PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    with postgres.postgres_cluster() as url:
        yield url


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    """A throw-away redis-server of the test's own (tests/redis_server.py), empty at the start."""
    require_tool(redis_server.available(), "`redis-server` is not installed (apt-get install -y redis-server)")
    with redis_server.running_redis() as server:
        yield server


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One stack for the integration tests that do not stop or slow down a service."""
    with Stack(tmp_path_factory.mktemp("stack")) as running:
        yield running
    # Every request of the integration tests went through it: no key or client secret in its logs.
    assert running.leaked_lines() == []


# The stack of the events-feed and webhook suites (docs/webhooks.md): private networks allowed (the
# receivers listen on loopback), a short retry schedule and timeout, a short SSE heartbeat.
WEBHOOK_ENV = {
    "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
    "WEBHOOK_RETRY_SCHEDULE_S": "0.2,0.2",
    "WEBHOOK_TIMEOUT_S": "1",
    "SSE_HEARTBEAT_S": "0.5",
}


@pytest.fixture(scope="session")
def webhook_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with Stack(tmp_path_factory.mktemp("webhooks"), env=WEBHOOK_ENV) as running:
        yield running
    # No key, client secret or webhook signing secret in any log line (docs/webhooks.md#webhook-endpoints).
    assert running.leaked_lines(["whsec_"]) == []


@pytest.fixture
def fresh_stack(tmp_path: Path) -> Iterator[Stack]:
    """A stack of its own, for tests that kill, stop or reconfigure services (not started)."""
    created = Stack(tmp_path / "stack")
    yield created
    created.stop()
    assert created.leaked_lines() == []


def client_of(stack_fixture: str) -> Callable[[pytest.FixtureRequest], AsyncIterator[httpx.AsyncClient]]:
    """A fixture: an HTTP client of the stack that the fixture `stack_fixture` runs, with the secret
    key of its account."""

    @pytest.fixture
    async def client(request: pytest.FixtureRequest) -> AsyncIterator[httpx.AsyncClient]:
        stack: Stack = request.getfixturevalue(stack_fixture)
        async with stack.client() as http:
            yield http

    return client


client = client_of("stack")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A webhook receiver on loopback (tests/webhook_receiver.py)."""
    async with receiving() as running:
        yield running

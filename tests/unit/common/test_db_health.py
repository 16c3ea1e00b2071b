"""The database health probe (common/db_health.py) on a real SQLite database and grpc's real
HealthServicer: SQLite serves as long as its file is the one it opened, and after SIGTERM's
NOT_SERVING no answer of the database turns the health back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from grpc_health.v1 import health_pb2
from grpc_health.v1._async import HealthServicer

from common.db import Database, open_database
from common.db_health import DB_UP, DatabaseHealth

SERVICE = "shop.test.v1.Test"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    opened = open_database(f"sqlite:///{tmp_path}/t.db")
    await opened.start()
    yield opened
    await opened.close()


async def status(health: HealthServicer, service: str = "") -> int:
    class _Context:
        async def abort(self, *args: object) -> None:
            raise AssertionError(args)

    reply = await health.Check(health_pb2.HealthCheckRequest(service=service), _Context())
    return int(reply.status)


async def test_sqlite_serves_while_its_file_is_there(db: Database, tmp_path: Path) -> None:
    health = HealthServicer()
    await health.set(SERVICE, SERVING)
    probe = DatabaseHealth(db, health, [SERVICE])
    assert await probe.probe_once()
    assert await status(health) == await status(health, SERVICE) == SERVING
    assert DB_UP._value.get() == 1

    (tmp_path / "t.db").rename(tmp_path / "moved.db")  # what it writes now would be lost
    assert not await probe.probe_once()
    assert await status(health) == await status(health, SERVICE) == NOT_SERVING
    assert DB_UP._value.get() == 0

    (tmp_path / "moved.db").rename(tmp_path / "t.db")
    assert await probe.probe_once()
    assert await status(health) == await status(health, SERVICE) == SERVING


async def test_shutdown_stays_not_serving_whatever_the_database_says(db: Database) -> None:
    health = HealthServicer()
    await health.set(SERVICE, SERVING)
    probe = DatabaseHealth(db, health, [SERVICE])
    probe.serving = False  # as after an outage: the database's return would say SERVING
    await health.enter_graceful_shutdown()
    assert await probe.probe_once()
    assert await status(health) == await status(health, SERVICE) == NOT_SERVING

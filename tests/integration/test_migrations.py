"""Schema migrations (Alembic), on SQLite and on a real PostgreSQL: from empty they produce what
the code expects (schema.py), replicas that migrate at once all succeed, and a service refuses —
with one line — a schema newer than it knows or a database made before migrations existed."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, create_engine, text

from common.migrations import History, upgrade
from order_service import schema as order_schema
from order_service.server import HISTORY as ORDER_HISTORY
from payment_service import schema as payment_schema
from payment_service.server import HISTORY as PAYMENT_HISTORY
from tests import postgres
from tests.harness import ROOT, free_port

SERVICES = [(ORDER_HISTORY, order_schema.metadata), (PAYMENT_HISTORY, payment_schema.metadata)]


def sync_url(url: str) -> str:
    return url if url.startswith("sqlite") else url.replace("postgresql://", "postgresql+asyncpg://", 1)


def differences(url: str, history: History, metadata: MetaData) -> list[object]:
    """What Alembic's autogenerate would change to make the database match `metadata`."""

    def compare(conn: object) -> list[object]:
        context = MigrationContext.configure(
            conn,  # type: ignore[arg-type]
            opts={
                "version_table": history.version_table,
                # The other service's tables (they may share a database) are not ours to compare.
                "include_name": lambda name, kind, _: kind != "table" or name in metadata.tables,
            },
        )
        return list(compare_metadata(context, metadata))

    if url.startswith("sqlite"):
        engine = create_engine(url)
        with engine.connect() as conn:
            found = compare(conn)
        engine.dispose()
        return found

    async def on_postgres() -> list[object]:
        from sqlalchemy.ext.asyncio import create_async_engine

        engine = create_async_engine(sync_url(url))
        async with engine.connect() as conn:
            found = await conn.run_sync(compare)
        await engine.dispose()
        return found

    return asyncio.run(on_postgres())


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/empty.db"
    server: str = request.getfixturevalue("postgres_server")
    return postgres.create_database(server, f"m_{uuid.uuid4().hex[:12]}")


@pytest.mark.parametrize(("history", "metadata"), SERVICES, ids=["order_service", "payment_service"])
def test_migrations_from_empty_give_what_the_code_expects(empty_url: str, history: History, metadata: MetaData) -> None:
    assert asyncio.run(upgrade(history, empty_url)) == history.head
    assert differences(empty_url, history, metadata) == []
    # Again: nothing to do, same revision.
    assert asyncio.run(upgrade(history, empty_url)) == history.head


@pytest.mark.postgres
def test_replicas_migrating_at_once_all_succeed(postgres_server: str) -> None:
    # Both services in one database, four replicas each, all at the same moment.
    url = postgres.create_database(postgres_server, f"m_{uuid.uuid4().hex[:12]}")

    async def everyone() -> list[str]:
        return await asyncio.gather(*(upgrade(h, url) for h, _ in SERVICES for _ in range(4)))

    assert sorted(set(asyncio.run(everyone()))) == sorted({h.head for h, _ in SERVICES})
    for history, metadata in SERVICES:
        assert differences(url, history, metadata) == []


def run_service(module: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def test_a_schema_newer_than_the_code_is_refused_with_one_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/orders.db"
    asyncio.run(upgrade(ORDER_HISTORY, url))
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE {ORDER_HISTORY.version_table} SET version_num = '9999'"))
    engine.dispose()
    for args in ((), ("migrate",)):
        done = run_service("order_service", *args, env={"ORDER_DATABASE_URL": url, "PATH": "/usr/bin:/bin"})
        assert done.returncode == 1
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert "9999" in lines[0]
        assert "newer" in lines[0]


def test_a_database_from_before_migrations_is_refused_with_one_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/payments.db"
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE payments (id VARCHAR(40) PRIMARY KEY)"))
    engine.dispose()
    done = run_service("payment_service", "migrate", env={"PAYMENT_DATABASE_URL": url, "PATH": "/usr/bin:/bin"})
    assert done.returncode == 1
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "without schema migrations" in done.stderr


def test_migrate_only_migrates_and_exits(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/orders.db"
    done = run_service("order_service", "migrate", env={"ORDER_DATABASE_URL": url, "ORDER_SERVICE_PORT": "1"})
    assert done.returncode == 0, done.stderr
    assert differences(url, ORDER_HISTORY, order_schema.metadata) == []


@pytest.mark.postgres
def test_no_host_that_takes_writes_stops_the_start_with_one_line(postgres_server: str) -> None:
    """Every host of the URL down, or a standby: one line, not a traceback (`serve` migrates
    first, the same way)."""
    standby_only = postgres_server + "?target_session_attrs=standby"  # the one server is a primary
    down = f"postgresql://u@127.0.0.1:{free_port()},127.0.0.1:{free_port()}/db"
    for url in (standby_only, down):
        done = run_service("payment_service", "migrate", env={"PAYMENT_DATABASE_URL": url, "PATH": "/usr/bin:/bin"})
        assert done.returncode == 1
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert "cannot use the database" in lines[0]

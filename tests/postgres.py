"""A throw-away PostgreSQL cluster in a temporary folder, for the tests of the PostgreSQL path.

`initdb` refuses to run as root, so as root the cluster belongs to the `postgres` user (or
`nobody`) and the commands run through `runuser`."""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg

from tests.harness import free_port


def _owner() -> str | None:
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("running as root and there is no postgres or nobody user")


def available() -> bool:
    return shutil.which("initdb") is not None and shutil.which("pg_ctl") is not None


@contextmanager
def postgres_cluster(durable: bool = False) -> Iterator[str]:
    """Start a cluster on a free port; yield its URL (`postgresql://…/postgres`); remove it.

    The tests run it with fsync off (nothing they check needs the disk); `durable` keeps
    PostgreSQL's own default, a flushed WAL at every commit, for the benchmark's figures."""
    owner = _owner()
    prefix = ["runuser", "-u", owner, "--"] if owner else []
    folder = Path(tempfile.mkdtemp(prefix="pg-"))
    if owner:
        shutil.chown(folder, owner)
    data, port = folder / "data", free_port()
    user = owner or pwd.getpwuid(os.geteuid()).pw_name

    def run(*args: str) -> None:
        subprocess.run([*prefix, *args], check=True, capture_output=True, timeout=60, cwd=folder)

    run("initdb", "-D", str(data), "-A", "trust", "-U", user, "--no-sync")
    # max_connections: every replica's pool of both services, plus the listeners, with room.
    fsync = "" if durable else " -c fsync=off"
    run(
        "pg_ctl", "-D", str(data), "-l", str(folder / "log"), "-w", "-o",
        f"-p {port} -k {folder} -c listen_addresses=127.0.0.1{fsync} -c max_connections=300", "start",
    )  # fmt: skip
    try:
        yield f"postgresql://{user}@127.0.0.1:{port}/postgres"
    finally:
        run("pg_ctl", "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(folder, ignore_errors=True)


def create_database(server_url: str, name: str) -> str:
    """A new, empty database on the cluster of `server_url`; returns its URL."""

    async def create() -> None:
        conn = await asyncpg.connect(server_url)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    return server_url.rsplit("/", 1)[0] + f"/{name}"

"""Throw-away PostgreSQL servers in temporary folders, for the tests of the PostgreSQL path: one
server (`postgres_cluster`, or `Server` to stop, restart and kill it), or a primary with a
synchronous standby to fail over to (`primary_and_standby`).

`initdb` refuses to run as root, so as root the cluster belongs to the `postgres` user (or
`nobody`) and the commands run through `runuser`."""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from tests.harness import Cluster, free_port

# The standby's name, as the primary's synchronous_standby_names knows it.
STANDBY_NAME = "standby1"


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


def standby_available() -> bool:
    """The tools of `primary_and_standby` too (pg_basebackup)."""
    return available() and (Path(tool("pg_basebackup")).exists() or shutil.which("pg_basebackup") is not None)


def tool(name: str) -> str:
    """A server tool of the same installation as initdb (Debian keeps them off PATH)."""
    initdb = shutil.which("initdb")
    assert initdb is not None
    beside = Path(initdb).resolve().parent / name
    return str(beside) if beside.exists() else name


@dataclass
class Server:
    """One PostgreSQL server in `folder` on `port`. `options`: more `-c name=value` settings."""

    folder: Path
    port: int = field(default_factory=free_port)
    options: str = ""
    durable: bool = False

    def __post_init__(self) -> None:
        self.owner = _owner()
        self.user = self.owner or pwd.getpwuid(os.geteuid()).pw_name
        self.data = self.folder / "data"

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/postgres"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        prefix = ["runuser", "-u", self.owner, "--"] if self.owner else []
        return subprocess.run([*prefix, *args], check=check, capture_output=True, timeout=60, cwd=self.folder)

    def init(self) -> Server:
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.owner:
            shutil.chown(self.folder, self.owner)
        self.run("initdb", "-D", str(self.data), "-A", "trust", "-U", self.user, "--no-sync")
        return self

    def start(self) -> Server:
        # max_connections: every replica's pool of both services, plus the listeners, with room.
        # The tests run with fsync off (nothing they check needs the disk); `durable` keeps
        # PostgreSQL's own default, a flushed WAL at every commit, for the benchmark's figures.
        fsync = "" if self.durable else " -c fsync=off"
        settings = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1{fsync} -c max_connections=300"
        self.run("pg_ctl", "-D", str(self.data), "-l", str(self.folder / "log"), "-w",
                 "-o", f"{settings} {self.options}".strip(), "start")  # fmt: skip
        return self

    def stop(self, mode: str = "fast") -> None:
        """`fast`: every session ended, a clean shutdown; `immediate`: as in a crash."""
        self.run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def kill(self) -> None:
        """SIGKILL of the postmaster: no shutdown at all. Its backends notice and exit."""
        os.kill(self.pid, signal.SIGKILL)

    def promote(self) -> None:
        self.run("pg_ctl", "-D", str(self.data), "-w", "promote")

    @property
    def pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])

    @property
    def running(self) -> bool:
        return self.run("pg_ctl", "-D", str(self.data), "status", check=False).returncode == 0

    def log(self) -> str:
        path = self.folder / "log"
        return path.read_text(errors="replace") if path.exists() else ""

    def remove(self) -> None:
        if self.running:
            self.run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.folder, ignore_errors=True)


@contextmanager
def server(durable: bool = False, options: str = "") -> Iterator[Server]:
    """A started server on a free port, removed at the end. `options`: more `-c name=value`
    settings (e.g. `shared_preload_libraries`, which only a start can set)."""
    started = Server(Path(tempfile.mkdtemp(prefix="pg-")), options=options, durable=durable)
    try:
        yield started.init().start()
    finally:
        started.remove()


@contextmanager
def postgres_cluster(durable: bool = False, options: str = "") -> Iterator[str]:
    """Start a cluster on a free port; yield its URL (`postgresql://…/postgres`); remove it."""
    with server(durable, options) as started:
        yield started.url


@contextmanager
def primary_and_standby(timeout: float = 60) -> Iterator[tuple[Server, Server]]:
    """A primary whose every commit waits for its standby (`synchronous_standby_names`,
    `synchronous_commit=on`): nothing a client was told is committed can be missing from the
    standby. The standby is `pg_basebackup -R` of the primary, streaming from it; promote it
    with `standby.promote()`. The standby's own settings say nothing of synchronous standbys, so
    once promoted it commits alone."""
    folder = Path(tempfile.mkdtemp(prefix="pg-pair-"))
    sync = f"-c synchronous_standby_names={STANDBY_NAME} -c synchronous_commit=on"
    primary = Server(folder / "primary", options=sync)
    # wal_retrieve_retry_interval: how soon the standby looks again for WAL once the primary is
    # gone, and so how soon a promotion is noticed (the default waits 5 s).
    standby = Server(folder / "standby", options=f"-c cluster_name={STANDBY_NAME} -c wal_retrieve_retry_interval=200ms")
    if primary.owner:
        shutil.chown(folder, primary.owner)
    try:
        primary.init().start()
        standby.folder.mkdir()
        if standby.owner:
            shutil.chown(standby.folder, standby.owner)
        # -R: a standby.signal and primary_conninfo (the walreceiver's application_name is the
        # standby's cluster_name, which the primary waits for).
        standby.run(tool("pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary.port), "-U", primary.user,
                    "-D", str(standby.data), "-R", "-X", "stream", "--no-sync")  # fmt: skip
        standby.start()
        _wait_for_sync_standby(primary, timeout)
        yield primary, standby
    finally:
        standby.remove()
        primary.remove()
        shutil.rmtree(folder, ignore_errors=True)


def _wait_for_sync_standby(primary: Server, timeout: float) -> None:
    """Until the primary names the standby synchronous (it has caught up and streams); until
    then the primary's commits would wait. Another process's state: polled."""

    async def state() -> str | None:
        conn = await asyncpg.connect(primary.url)
        try:
            value = await conn.fetchval("SELECT sync_state FROM pg_stat_replication WHERE application_name = $1",
                                        STANDBY_NAME)  # fmt: skip
            return None if value is None else str(value)
        finally:
            await conn.close()

    deadline = time.monotonic() + timeout
    while asyncio.run(state()) != "sync":
        if time.monotonic() > deadline:
            raise TimeoutError("the standby did not become synchronous")
        time.sleep(0.1)


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


def cluster_on(server_url: str, workdir: Path, **options: Any) -> Cluster:
    """A Cluster (not started) on two new databases of the server at `server_url`."""
    suffix = uuid.uuid4().hex[:8]
    return Cluster(
        workdir,
        order_database_url=create_database(server_url, f"orders_{suffix}"),
        payment_database_url=create_database(server_url, f"payments_{suffix}"),
        **options,
    )


def failover_url(primary: Server, standby: Server, database: str) -> str:
    """The URL a service is given: both hosts, the one that takes writes chosen at connection."""
    return f"postgresql://{primary.user}@{primary.host},{standby.host}/{database}?target_session_attrs=read-write"

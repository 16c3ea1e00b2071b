"""PostgreSQL URLs that name a primary and its standbys, and connecting to whichever takes writes.

    postgresql://shop@db-a:5432,db-b:5432/orders?target_session_attrs=read-write

is libpq's multi-host form: the hosts are tried in turn, and with `target_session_attrs=read-write`
a server in recovery (a standby) is passed over. After a failover — the primary dead, a standby
promoted — the next connection lands on the new primary, so the pools and the LISTEN connection
find it by themselves, with no replica restarted.

asyncpg understands the form, but spends one timeout on all the hosts together: a host that does
not answer at all (a dead machine, a partition) uses it up, and the next host is never tried. So
each host is tried on its own, for at most CONNECT_TIMEOUT_S, starting with the one that last
worked, so that only the first connection after a failover waits for the dead one.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from common.db import DatabaseUrlError

log = logging.getLogger(__name__)

# How long one host may take to accept a connection before the next host is tried. A live
# server on a network answers in milliseconds; a dead one not at all.
CONNECT_TIMEOUT_S = 2.0
# What a failed connection raises, and the reasons to try the next host: it refuses or does not
# answer, is starting up or shutting down (a PostgresError before the session exists), is a
# standby (TargetServerAttributeNotMatched, one of asyncpg's InternalClientErrors), or was cut.
CONNECT_ERRORS = (
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
)


@dataclass(frozen=True)
class PostgresUrl:
    """`postgresql://[user[:password]@]host[:port][,host[:port]…][/database][?query]`, split."""

    userinfo: str
    hosts: tuple[str, ...]
    database: str
    query: str

    @classmethod
    def parse(cls, url: str) -> PostgresUrl:
        scheme, sep, rest = url.partition("://")
        if not sep or not scheme.startswith("postgres"):
            raise DatabaseUrlError("is not a PostgreSQL URL (postgresql://…)")
        rest, _, query = rest.partition("?")
        netloc, _, database = rest.partition("/")
        userinfo, at, hostlist = netloc.rpartition("@")
        hosts = tuple(hostlist.split(",")) if hostlist else ("",)
        for host in hosts:
            _check_host(host)
        return cls(userinfo + at, hosts, database, query)

    def single_host(self, host: str) -> str:
        """The asyncpg DSN of this URL with only `host` (libpq's spelling of the scheme)."""
        tail = f"/{self.database}" if self.database else ""
        return f"postgresql://{self.userinfo}{host}{tail}" + (f"?{self.query}" if self.query else "")

    @property
    def dsns(self) -> list[str]:
        return [self.single_host(host) for host in self.hosts]


def _check_host(host: str) -> None:
    """`name`, `name:port`, `[v6]`, `[v6]:port` or empty (the default: a local socket or localhost)."""
    if host.startswith("["):
        address, bracket, port = host[1:].partition("]")
        port = port.removeprefix(":") if port.startswith(":") else port
        if not bracket or not address or (port and not port.isdigit()):
            raise DatabaseUrlError(f"has a host that is not [address]:port ({host!r})")
        return
    _, colon, port = host.partition(":")
    if colon and not port.isdigit():
        raise DatabaseUrlError(f"has a host whose port is not a number ({host!r})")


class Hosts:
    """Connects to the first host of a URL that takes the session (see the module docstring)."""

    def __init__(self, url: str, connect_timeout_s: float = CONNECT_TIMEOUT_S) -> None:
        self.dsns: Sequence[str] = PostgresUrl.parse(url).dsns
        self.connect_timeout_s = connect_timeout_s
        self._first = 0  # the host that last took a connection

    @property
    def preferred(self) -> int:
        """The index of the host tried first: the one that last took a connection."""
        return self._first

    async def connect(self, *_args: object, **kwargs: Any) -> asyncpg.Connection:
        """A new connection; `kwargs` as for `asyncpg.connect` (so it serves as a pool's
        `connect`). Raises the last host's error when none takes it."""
        failure: BaseException | None = None
        for step in range(len(self.dsns)):
            index = (self._first + step) % len(self.dsns)
            try:
                conn: asyncpg.Connection = await asyncpg.connect(
                    self.dsns[index], timeout=self.connect_timeout_s, **kwargs
                )
            except CONNECT_ERRORS as exc:
                failure = exc
                continue
            if index != self._first:
                log.info("connected to another database host", extra={"host": index + 1, "hosts": len(self.dsns)})
                self._first = index
            return conn
        assert failure is not None
        raise failure

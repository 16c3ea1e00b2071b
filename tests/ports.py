"""Listening ports for the servers a test starts, that nobody can take before the server binds.

Binding port 0, closing it and handing the number on is a race: until the server binds it, the
port is free, and the kernel hands the same range (`ip_local_port_range`) to the local end of every
client connection — the fault suites open thousands. So ports come from a range the kernel never
hands out by itself, and each is claimed with a lock file that every test process (pytest, the
bench, a helper process) respects. The claim lasts as long as the process that made it: a service
restarted by a test gets the same port again, and no other process can be handed it meanwhile.
"""

from __future__ import annotations

import errno
import fcntl
import os
import random
import socket
import tempfile
from pathlib import Path

_LOCKS = Path(tempfile.gettempdir()) / "shop-test-ports"
# Below Linux's default ephemeral range (32768–60999) and above the usual well-known services.
_FIRST, _LAST = 20000, 32767

_held: list[int] = []  # the lock files' descriptors: a claim ends with the process
_next: int | None = None


def _ephemeral_range() -> range:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return range(int(low), int(high) + 1)
    except (OSError, ValueError):
        return range(32768, 61000)


def _candidates() -> range:
    ephemeral = _ephemeral_range()
    first, last = _FIRST, min(_LAST, ephemeral.start - 1)
    if last - first < 1000:  # an unusual ephemeral range: use the space above it instead
        first, last = ephemeral.stop, 65535
    if last - first < 1000:
        raise RuntimeError(f"no room for test ports outside the ephemeral range {ephemeral.start}-{ephemeral.stop - 1}")
    return range(first, last + 1)


def _claim(port: int) -> bool:
    """Take the port's lock file, then check that nothing already listens on it."""
    _LOCKS.mkdir(exist_ok=True)
    fd = os.open(_LOCKS / f"{port}.lock", os.O_CREAT | os.O_RDWR, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EACCES):
            return False
        raise
    with socket.socket() as sock:
        # As a server binds it (SO_REUSEADDR): a connection of an earlier user in TIME_WAIT does
        # not stop a server, but a listener does.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            os.close(fd)
            return False
    _held.append(fd)
    return True


def free_port() -> int:
    """A port on 127.0.0.1 that this process keeps for its lifetime: no other process using this
    module gets it, and no client connection is given it as its local port."""
    global _next
    candidates = _candidates()
    if _next is None:  # processes started together begin at different places
        _next = random.randrange(len(candidates))
    for _ in range(len(candidates)):
        port = candidates[_next % len(candidates)]
        _next += 1
        if _claim(port):
            return port
    raise RuntimeError(f"every test port in {candidates.start}-{candidates.stop - 1} is taken")

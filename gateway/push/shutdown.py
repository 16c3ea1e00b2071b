"""Ending the push streams as soon as the process is asked to stop.

uvicorn answers SIGTERM / SIGINT by waiting for open responses to finish (up to its graceful
shutdown timeout) before it runs the application's shutdown. A stream or a held long poll never
finishes by itself, so without this every stop would take the whole timeout. Chaining in front
of the handler that uvicorn installed lets the hub end them at once (SSE streams end, WebSockets
close with 1001, held polls answer 304), so the clients reconnect — to another replica, or to
this one once it is back — and resume from the versions they have.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable
from types import FrameType

EXIT_SIGNALS = (signal.SIGTERM, signal.SIGINT)

Handler = Callable[[int, FrameType | None], object]


def on_exit_signals(callback: Callable[[], None]) -> Callable[[], None]:
    """Run `callback` on the running event loop when SIGTERM or SIGINT arrives, then the handler
    that the server installed for it. Returns the function that puts that handler back. Does
    nothing for a signal that has no Python handler (no server to chain to), nor outside the
    main thread (where handlers cannot be set)."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    loop = asyncio.get_running_loop()
    previous: dict[int, Handler] = {}

    def handle(signum: int, frame: FrameType | None) -> None:
        # A signal handler may interrupt the loop anywhere: hand the work to the loop.
        loop.call_soon_threadsafe(callback)
        previous[signum](signum, frame)

    for signum in EXIT_SIGNALS:
        installed = signal.getsignal(signum)
        if callable(installed):
            previous[signum] = installed
            signal.signal(signum, handle)

    def restore() -> None:
        for signum, handler in previous.items():
            if signal.getsignal(signum) is handle:
                signal.signal(signum, handler)

    return restore

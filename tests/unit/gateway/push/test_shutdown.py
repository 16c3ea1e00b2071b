from __future__ import annotations

import asyncio
import signal
from types import FrameType

from gateway.push.shutdown import on_exit_signals


async def test_the_callback_runs_on_the_loop_and_the_server_handler_still_runs() -> None:
    server_saw: list[int] = []

    def server_handler(signum: int, frame: FrameType | None) -> None:
        server_saw.append(signum)

    before = signal.signal(signal.SIGINT, server_handler)
    try:
        called = asyncio.Event()
        restore = on_exit_signals(called.set)
        signal.raise_signal(signal.SIGINT)
        await asyncio.wait_for(called.wait(), 1)
        assert server_saw == [signal.SIGINT]
        restore()
        assert signal.getsignal(signal.SIGINT) is server_handler
    finally:
        signal.signal(signal.SIGINT, before)

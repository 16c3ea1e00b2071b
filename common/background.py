"""A service's background loop (the reconciler, the webhook worker, the database health probe):
one task, started once the server serves and cancelled at its shutdown."""

from __future__ import annotations

import asyncio
from typing import ClassVar


class BackgroundLoop:
    """Subclasses name the task and define `_run`, which runs until it is cancelled."""

    task_name: ClassVar[str]
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.task_name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        raise NotImplementedError

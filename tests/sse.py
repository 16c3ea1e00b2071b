"""Server-sent events as the fault suite's watchers and the soak's read them: the JSON of each
event's data lines, in order, until the stream ends."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx


async def sse_json(reply: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    data: list[str] = []
    async for line in reply.aiter_lines():
        if line.startswith("data:"):
            data.append(line[5:].strip())
        elif line == "" and data:
            yield json.loads("\n".join(data))
            data = []

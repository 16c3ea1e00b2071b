"""The hub as a FastAPI dependency, for HTTP routes and WebSocket routes alike."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from gateway.push.hub import Hub


def _hub(connection: HTTPConnection) -> Hub:
    return connection.app.state.hub  # type: ignore[no-any-return]


HubDep = Annotated[Hub, Depends(_hub)]

"""What the push endpoints take from a request: the hub (as a FastAPI dependency, for the
long-poll route) and the order id of a path (for the plain ASGI endpoints, which FastAPI's
validation does not reach)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection
from starlette.types import Scope

from gateway.deps import RESOURCE_ID_RE
from gateway.push.hub import Hub


async def _hub(connection: HTTPConnection) -> Hub:
    return connection.app.state.hub  # type: ignore[no-any-return]


HubDep = Annotated[Hub, Depends(_hub)]


def order_id_of(scope: Scope) -> str | None:
    """The `{order_id}` of the path, or None when it is not a valid id."""
    order_id = scope["path_params"]["order_id"]
    return order_id if isinstance(order_id, str) and RESOURCE_ID_RE.match(order_id) else None

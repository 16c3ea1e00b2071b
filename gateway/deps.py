"""What the routes take from a request, as `Annotated` aliases for their signatures: the
application's settings and gRPC backends, the Idempotency-Key header, and a resource id in the
path.

Every dependency is `async def`, even where it awaits nothing: FastAPI runs a plain `def`
dependency in its thread pool, a thread hop per request for each."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Depends, Header, Path, Request

from common.input_limits import IDEMPOTENCY_KEY_PATTERN, IDEMPOTENCY_KEY_RE
from gateway.backends import Backends
from gateway.errors import ApiError
from gateway.settings import GatewaySettings

# The ids the services make (`ord_01JD…`, `pay_01JD…`); the plain ASGI push endpoints, which
# FastAPI's validation does not reach, check theirs with the same rule (gateway/push/deps.py).
RESOURCE_ID_PATTERN = r"^[A-Za-z0-9_]{1,64}$"
RESOURCE_ID_RE = re.compile(RESOURCE_ID_PATTERN.removesuffix("$") + r"\Z")


async def _backends(request: Request) -> Backends:
    return request.app.state.backends  # type: ignore[no-any-return]


async def _settings(request: Request) -> GatewaySettings:
    return request.app.state.settings  # type: ignore[no-any-return]


async def _idempotency_key(
    idempotency_key: Annotated[
        str | None,
        Header(
            description="Makes the POST safe to retry: a repeat within 24 h returns the first answer.",
            # Documented, not enforced here: the check below answers with the API's own message.
            json_schema_extra={"pattern": IDEMPOTENCY_KEY_PATTERN, "minLength": 1, "maxLength": 255},
        ),
    ] = None,
) -> str | None:
    if idempotency_key is not None and not IDEMPOTENCY_KEY_RE.match(idempotency_key):
        raise ApiError(
            400,
            "the Idempotency-Key header is invalid",
            errors=[{"field": "Idempotency-Key", "message": "must be 1-255 visible ASCII characters"}],
        )
    return idempotency_key


BackendsDep = Annotated[Backends, Depends(_backends)]
SettingsDep = Annotated[GatewaySettings, Depends(_settings)]
IdempotencyKey = Annotated[str | None, Depends(_idempotency_key)]
ResourceId = Annotated[str, Path(pattern=RESOURCE_ID_PATTERN, description="A prefixed id such as ord_01JD…")]

"""FastAPI dependencies, as Annotated aliases the routers use in their signatures.

Every dependency is `async def`, even where it awaits nothing: FastAPI runs a plain `def`
dependency in a thread pool, a thread hop per request for each (measured: a third of the
gateway's CPU per order went to the pool's locks)."""

from __future__ import annotations

import time
from typing import Annotated, Any

import grpc
import orjson
from fastapi import Depends, Header, Path, Request
from starlette.responses import Response

from common.caller import CallerScope
from common.errors import REPLAYED_KEY, metadata_value
from common.input_limits import IDEMPOTENCY_KEY_PATTERN, IDEMPOTENCY_KEY_RE
from gateway.backends import Backends
from gateway.errors import ApiError
from gateway.metrics import GRPC_CALLS, GRPC_LATENCY
from gateway.settings import GatewaySettings


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


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
ResourceId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_]{1,64}$", description="A prefixed id such as ord_01JD…")]


async def call(
    name: str,
    method: grpc.aio.UnaryUnaryMultiCallable[Any, Any],
    request: Any,
    settings: GatewaySettings,
    scope: CallerScope,
    idempotency_key: str | None = None,
) -> tuple[Any, bool]:
    """One unary call with the gateway's deadline, acting for `scope` (the caller's account or
    client secret: the services answer only within it); returns the answer and whether the
    service replayed it for an idempotency key. A gRPC error propagates to the error handler."""
    metadata = scope.metadata()
    if idempotency_key:
        metadata += (("idempotency-key", idempotency_key),)
    started = time.perf_counter()
    call_ = method(request, timeout=settings.gateway_deadline_s, metadata=metadata or None)
    try:
        response = await call_
    except grpc.aio.AioRpcError as exc:
        GRPC_CALLS.labels(name, exc.code().name).inc()
        raise
    finally:
        GRPC_LATENCY.labels(name).observe(time.perf_counter() - started)
    GRPC_CALLS.labels(name, "OK").inc()
    replayed = metadata_value(await call_.trailing_metadata(), REPLAYED_KEY) == "true"
    return response, replayed

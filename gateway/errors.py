"""Every error the gateway answers, as application/problem+json (RFC 9457).

gRPC status codes become HTTP statuses through one table (google.rpc.Code, as grpc-gateway
maps them); HTTP-level errors (404 path, 405, 413, 415, invalid JSON) are built here too.
No answer carries a stack trace or an internal address: the detail of an error that the gRPC
library made up (a refused connection, a deadline) is replaced by a plain sentence.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import grpc
import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import Match

from common.errors import (
    REPLAYED_KEY,
    error_reason,
    field_violations,
    metadata_value,
    original_request_id,
    retry_after_s,
    rich_status,
)
from common.logs import request_id_var
from gateway.schemas import FieldError, Problem

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

GRPC_TO_HTTP: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
}

# Where an ErrorInfo reason asks for a more precise HTTP status than the code's.
REASON_TO_HTTP = {"IDEMPOTENCY_KEY_REUSED": 422}

# The `code` of an error the gateway answers by itself. 405 is UNIMPLEMENTED as in grpc-gateway
# ("this operation is not supported here"); a request too large in any part is RESOURCE_EXHAUSTED
# as a gRPC message over the limit is.
_HTTP_TO_CODE = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "UNIMPLEMENTED",
    409: "ABORTED",
    413: "RESOURCE_EXHAUSTED",
    415: "INVALID_ARGUMENT",
    422: "FAILED_PRECONDITION",
    429: "RESOURCE_EXHAUSTED",
    431: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

_LIBRARY_DETAILS = {
    grpc.StatusCode.UNAVAILABLE: "the service is unavailable; try again shortly",
    grpc.StatusCode.DEADLINE_EXCEEDED: "the request did not finish within its deadline",
    grpc.StatusCode.CANCELLED: "the request was cancelled",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "the request is too large or the service is overloaded",
}


class ApiError(Exception):
    """An error the gateway itself decides on, before any service is asked."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors
        self.headers = headers
        self.code = code


def problem(
    status: int,
    detail: str,
    *,
    code: str | None = None,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
    request_id: str | None = None,
) -> Response:
    body: Problem = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Client Closed Request",
        "status": status,
        "detail": detail,
        "code": code or _HTTP_TO_CODE.get(status, "UNKNOWN"),
        "request_id": request_id or request_id_var.get(),
    }
    if errors:
        body["errors"] = errors
    return Response(orjson.dumps(body), status_code=status, media_type=PROBLEM_JSON, headers=headers)


def from_rpc_error(exc: grpc.aio.AioRpcError) -> Response:
    code = exc.code()
    status = rich_status(exc)
    if code == grpc.StatusCode.CANCELLED and status is None:
        # Not this gateway's doing: a request cancelled here raises CancelledError, not an
        # AioRpcError. gRPC cancels the calls a server had received but not yet started when it
        # shuts down (grpc/grpc#41785): the service went away, so it is UNAVAILABLE — 503, to be
        # retried — and not a 499 that no client asked for.
        code = grpc.StatusCode.UNAVAILABLE
    # Only a message one of our services wrote is shown; the library's own messages name
    # internal addresses ("failed to connect to 10.0.0.7:50051").
    detail = (exc.details() if status is not None else None) or _LIBRARY_DETAILS.get(
        code, code.name.lower().replace("_", " ")
    )
    if code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DATA_LOSS):
        detail = "internal error"
    http_status = REASON_TO_HTTP.get(error_reason(status) or "", GRPC_TO_HTTP.get(code, 500))
    errors: list[FieldError] = [{"field": f, "message": m} for f, m in field_violations(status)]
    if http_status >= 500:
        log.warning("backend error", extra={"grpc_code": code.name, "grpc_details": exc.details()})
    headers: dict[str, str] = {}
    delay = retry_after_s(status)
    if delay is not None:
        headers["Retry-After"] = str(delay)
    first_request = original_request_id(status)
    if metadata_value(exc.trailing_metadata(), REPLAYED_KEY) == "true":
        headers["Idempotent-Replayed"] = "true"
        # A replay is the first answer again, the first request's id included (as at Stripe,
        # `Original-Request` names it; X-Request-ID stays this request's own).
        if first_request:
            headers["Original-Request"] = first_request
    else:
        first_request = None
    return problem(
        http_status,
        detail,
        code=code.name,
        errors=errors or None,
        headers=headers or None,
        request_id=first_request,
    )


def _field(loc: tuple[Any, ...]) -> str:
    # ("body", "items", 0, "quantity") → "items.0.quantity"; ("query", "page_size") → "page_size"
    parts = (
        [str(p) for p in loc[1:]] if loc and loc[0] in ("body", "query", "path", "header") else [str(p) for p in loc]
    )
    return ".".join(parts) or "body"


def _message(error: dict[str, Any]) -> str:
    if error["type"] == "json_invalid":
        return "is not valid JSON"
    if error["type"] == "extra_forbidden":
        return "is not a known field"
    if error["type"] == "missing":
        return "is required"
    if error["type"] == "literal_error":
        return "is not one of the allowed values (see /docs)"
    ctx = error.get("ctx") or {}
    if error["type"] == "value_error" and "error" in ctx:
        return str(ctx["error"])  # our own validators' sentences, without pydantic's "Value error, "
    if error["type"] in ("greater_than_equal", "less_than_equal"):
        return f"must be {'≥' if error['type'] == 'greater_than_equal' else '≤'} {ctx.get('ge', ctx.get('le'))}"
    return str(error["msg"])


# What a 405's Allow header can name; HEAD goes with GET (gateway/middleware/head.py).
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
# The parts of a request's scope that routing reads.
_ROUTING_KEYS = ("type", "path", "root_path", "headers", "query_string")


def _allowed_methods(request: Request) -> str:
    """Every method that some route serves at the request's path, found by asking each route
    whether it takes the same path with that method. Reading `route.methods` found nothing:
    FastAPI keeps an included router as one route object without `methods`. (Starlette's own
    405 names only the first matching route's methods: `POST` for /v1/orders, which GETs too.)"""
    scope = {key: request.scope[key] for key in _ROUTING_KEYS if key in request.scope}
    allowed = [
        method
        for method in _METHODS
        if any(route.matches({**scope, "method": method})[0] == Match.FULL for route in request.app.router.routes)
    ]
    if "GET" in allowed:
        allowed.insert(1, "HEAD")
    return ", ".join(allowed)


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        return problem(exc.status, exc.detail, code=exc.code, errors=exc.errors, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        errors: list[FieldError] = [
            {"field": "body" if e["type"] == "json_invalid" else _field(tuple(e["loc"])), "message": _message(e)}
            for e in exc.errors()
        ]
        malformed = any(e["type"] == "json_invalid" for e in exc.errors())
        detail = "the request body is not valid JSON" if malformed else "the request is invalid"
        return problem(400, detail, errors=errors)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no route for {request.url.path}"
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            allowed = _allowed_methods(request)
            headers = {**(headers or {}), "Allow": allowed}
            detail = f"{request.method} is not allowed on {request.url.path}; allowed: {allowed}"
        return problem(exc.status_code, detail, headers=headers)

    @app.exception_handler(grpc.aio.AioRpcError)
    async def _rpc(request: Request, exc: grpc.aio.AioRpcError) -> Response:
        return from_rpc_error(exc)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error")
        return problem(500, "internal error")

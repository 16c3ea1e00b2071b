"""The gateway's request pipeline: what every HTTP request and WebSocket goes through around its
route, outermost first.

    #  middleware      module                 its job                              answers by itself
    ─  ──────────────  ─────────────────────  ───────────────────────────────────  ─────────────────
    1  TraceRequests   middleware/tracing.py  the request's SERVER span, current   —
                                              in all that follows; only when
                                              tracing is on
    2  RequestContext  middleware/context.py  X-Request-ID adopted or made and     431: headers over
                                              returned; the access log, metrics;   16 KiB
                                              the limit on the headers
    3  Authentication  auth.py                API key or client secret, rate       401, 403, 429;
                                              limits, failed authentications; the  404 for a malformed
                                              Caller left in the scope             client secret
    4  BodyGuard       middleware/body.py     a POST/PUT/PATCH body: JSON, not     400, 413, 415
                                              compressed, ≤ 64 KiB, one
                                              Content-Type, one Idempotency-Key
    5  HeadAsGet       middleware/head.py     HEAD routed as GET, answered         —
                                              without a body

Then FastAPI's own: routing (404, 405), the body and parameter models (400), the route, and
every error turned into problem+json (gateway/errors.py).

Why this order:
- the request id exists before anything can fail, so that every answer (a 431 and a 401 too)
  and every log line carries it; the span is outside it, so that the access log line is in it;
- who is calling is settled before the body is looked at: nobody without a key learns anything
  from a 400, 413 or 415;
- HEAD becomes GET only after the guards have seen the request as it came.

Each is plain ASGI (no BaseHTTPMiddleware), so that streamed answers (SSE) pass straight
through; between them they read the request's headers once (middleware/headers.py).
"""

from __future__ import annotations

from starlette.middleware import Middleware

from common import tracing
from gateway.auth import Authentication
from gateway.middleware.body import BodyGuard
from gateway.middleware.context import RequestContext
from gateway.middleware.head import HeadAsGet
from gateway.middleware.tracing import TraceRequests
from gateway.settings import GatewaySettings


def middleware(settings: GatewaySettings) -> list[Middleware]:
    """The pipeline above, outermost first (as FastAPI's `middleware=` takes it)."""
    tracer = tracing.tracer()
    return [
        *([Middleware(TraceRequests, tracer=tracer)] if tracer is not None else []),
        Middleware(RequestContext),
        Middleware(
            Authentication,
            keys=settings.gateway_api_keys,
            rate=settings.gateway_rate_limit,
            failure_rate=settings.gateway_auth_failure_limit,
        ),
        Middleware(BodyGuard),
        Middleware(HeadAsGet),
    ]

"""The gateway's request pipeline: what every HTTP request and WebSocket goes through around its
route, outermost first.

    middleware                             its job                                  answers itself
    ─────────────────────────────────────  ───────────────────────────────────────  ─────────────
    1 TraceRequests  middleware/tracing.py  the request's SERVER span, current in    —
                                            all that follows (only with tracing on)
    2 RequestContext middleware/context.py  X-Request-ID adopted or made, returned   431 headers
                                            and logged; the access log and metrics;  over 16 KiB
                                            the limit on the headers
    3 Authentication auth.py                API key or client secret, rate limits,   401, 403, 429
                                            failed authentications; the Caller left  (404: a
                                            in the scope for the routes              malformed secret)
    4 BodyGuard      middleware/body.py     a POST/PUT/PATCH body: JSON, not         400, 413, 415
                                            compressed, ≤ 64 KiB, one Content-Type
                                            and one Idempotency-Key
    5 HeadAsGet      middleware/head.py     HEAD routed as GET, answered bodiless    —

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

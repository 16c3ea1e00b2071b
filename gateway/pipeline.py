"""The gateway's request pipeline: what every HTTP request and WebSocket goes through around its
route, outermost first.

    #  middleware      module                 its job                              answers by itself
    ─  ──────────────  ─────────────────────  ───────────────────────────────────  ─────────────────
    1  TraceRequests   middleware/tracing.py  the request's SERVER span, current   —
                                              in all that follows; only when
                                              tracing is on
    2  RequestContext  middleware/context.py  X-Request-ID adopted or made and     —
                                              returned; the access log, metrics
    3  BrowserOrigins  origins.py             CORS for GATEWAY_CORS_ORIGINS; the   403: a preflight
                                              Origin of a WebSocket handshake      or WebSocket from
                                                                                   another origin
    4  HeaderLimit     middleware/            the request's headers, at most       431
                       header_limit.py        16 KiB in all
    5  Authentication  auth.py                API key or client secret, rate       401, 403, 429;
                                              limits, failed authentications; the  404 for a malformed
                                              Caller left in the scope             client secret
    6  BodyGuard       middleware/body.py     a POST/PUT/PATCH body: JSON, not     400, 413, 415
                                              compressed, ≤ 64 KiB, one
                                              Content-Type, one Idempotency-Key
    7  HeadAsGet       middleware/head.py     HEAD routed as GET, answered         —
                                              without a body

Then FastAPI's own: routing (404, 405), the body and parameter models (400), the route, and
every error turned into problem+json (gateway/errors.py).

Why this order:
- the request id exists before anything can fail, so that every answer (a 431 and a 401 too)
  and every log line carries it; the span is outside it, so that the access log line is in it;
- CORS is outside the header limit, the authentication and the guards, so that their refusals
  carry its headers and a preflight needs no key; inside RequestContext, so that its answers are
  logged and counted;
- who is calling is settled before the body is looked at: nobody without a key learns anything
  from a 400, 413 or 415;
- HEAD becomes GET only after the guards have seen the request as it came.

Each is plain ASGI (no BaseHTTPMiddleware), so that streamed answers (SSE) pass straight
through; between them they read the request's headers once (middleware/headers.py).

An order's SSE stream and WebSocket go through all of it for their set-up, up to the answer's
head (or the accepted socket); the stream itself is then served from in front of the pipeline
(gateway/streaming.py), so that an idle watcher holds none of these layers. A layer here sees
no message of such a stream after its head: one that needs to act when the stream ends says so
with `streaming.when_stream_ends` (RequestContext does, for the access log).
"""

from __future__ import annotations

from starlette.middleware import Middleware

from common import tracing
from gateway.auth import Authentication
from gateway.middleware.body import BodyGuard
from gateway.middleware.context import RequestContext
from gateway.middleware.head import HeadAsGet
from gateway.middleware.header_limit import HeaderLimit
from gateway.middleware.tracing import TraceRequests
from gateway.origins import BrowserOrigins, origin_of
from gateway.ratelimit import RateStorage
from gateway.settings import GatewaySettings


def middleware(settings: GatewaySettings, rates: RateStorage) -> list[Middleware]:
    """The pipeline above, outermost first (as FastAPI's `middleware=` takes it)."""
    tracer = tracing.tracer()
    return [
        *([Middleware(TraceRequests, tracer=tracer)] if tracer is not None else []),
        Middleware(RequestContext),
        Middleware(
            BrowserOrigins,
            origins=settings.gateway_cors_origins,
            own_origin=origin_of(settings.gateway_public_url),
        ),
        Middleware(HeaderLimit),
        Middleware(
            Authentication,
            keys=settings.gateway_api_keys,
            rate=settings.gateway_rate_limit,
            failure_rate=settings.gateway_auth_failure_limit,
            storage=rates,
        ),
        Middleware(BodyGuard),
        Middleware(HeadAsGet),
    ]

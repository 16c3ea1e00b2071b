"""What the pipeline reads from a request's headers, in one pass kept in the scope.

ASGI gives the headers as a list of byte pairs, so every lookup is a walk over the list; the
request id, the header limit, Authorization, a WebSocket's Origin, the body's Content-Type, Length and Encoding and
the trace context are wanted by four middlewares. `request_headers(scope)` walks the list once,
the first time any of them asks, and every later caller gets the same reading. Values stay the
bytes the server gave (no copies for a request that keeps its scope open, such as an SSE stream).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.types import Scope

_KEY = "shop.request_headers"
# Headers a POST may carry only once: the first and the last could disagree.
SINGLE = (b"content-type", b"idempotency-key")
TRACE = (b"traceparent", b"tracestate", b"baggage")
# The headers kept by their first value.
_FIRST = frozenset(
    {b"x-request-id", b"authorization", b"origin", b"content-type", b"content-length", b"transfer-encoding"}
)


@dataclass(slots=True)
class RequestHeaders:
    size: int = 0  # names and values together, in bytes
    first: dict[bytes, bytes] = field(default_factory=dict)  # of the _FIRST headers
    counts: dict[bytes, int] = field(default_factory=dict)  # of the SINGLE headers
    content_encodings: list[bytes] = field(default_factory=list)  # every coding named, in order
    trace: dict[bytes, bytes] = field(default_factory=dict)  # the last value of each TRACE header

    def get(self, name: bytes) -> str | None:
        """The first value of `name` (one of the headers kept), or None."""
        value = self.first.get(name)
        return None if value is None else value.decode("latin-1")

    @property
    def repeated(self) -> bytes | None:
        """The first of SINGLE that was sent more than once, or None."""
        return next((name for name in SINGLE if self.counts.get(name, 0) > 1), None)


def request_headers(scope: Scope) -> RequestHeaders:
    reading: RequestHeaders | None = scope.get(_KEY)
    if reading is None:
        reading = scope[_KEY] = _read(scope["headers"])
    return reading


def _read(headers: list[tuple[bytes, bytes]]) -> RequestHeaders:
    reading = RequestHeaders()
    for name, value in headers:
        reading.size += len(name) + len(value)
        if name in _FIRST:
            reading.first.setdefault(name, value)
        if name in SINGLE:
            reading.counts[name] = reading.counts.get(name, 0) + 1
        elif name == b"content-encoding":
            reading.content_encodings += (coding.strip().lower() for coding in value.split(b","))
        elif name in TRACE:
            reading.trace[name] = value
    return reading

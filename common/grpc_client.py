"""gRPC channels: one per target per process, opened at start-up and shared by all requests.

Balancing is the client's: a target may name several replicas (`dns:///name:port` — every address
of the name — or `ipv4:h1:p1,h2:p2`), and calls go round-robin over every address that answers; a
replica that dies is left out as soon as its connection breaks, and one that comes up is found
when the name is resolved again (servers bound connection age, so that clients do that).

Retries are declared in the service config, not coded: only UNAVAILABLE, only for methods that
are safe to repeat; a retry goes to the next replica. Every outbound call carries the current
request id as `x-request-id`, and, with tracing on, the trace as `traceparent` (grpc_tracing.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import grpc

from common.grpc_tracing import client_interceptors
from common.logs import request_id_var
from common.tls import TlsFiles

# Large enough for 100 line items with room to spare; bigger messages are refused as
# RESOURCE_EXHAUSTED before they reach a handler.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024

KEEPALIVE_CLIENT_OPTIONS: list[tuple[str, Any]] = [
    # Ping an idle connection every 30 s so that NATs and proxies do not drop it silently,
    ("grpc.keepalive_time_ms", 30_000),
    # and give up on it when the ping is not answered within 10 s.
    ("grpc.keepalive_timeout_ms", 10_000),
    # Watch streams can be idle for minutes; keep pinging them too.
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
]

KEEPALIVE_SERVER_OPTIONS: list[tuple[str, Any]] = [
    # Accept the clients' 30 s pings (the default minimum is 5 minutes, which would make the
    # server close the connection with "too_many_pings"). The name is gRPC core's
    # GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS; an unknown name is silently ignored.
    ("grpc.http2.min_ping_interval_without_data_ms", 20_000),
    ("grpc.keepalive_permit_without_calls", 1),
]

RECONNECT_OPTIONS: list[tuple[str, Any]] = [
    # Reconnect to a restarted service within about a second. gRPC's default backoff starts at
    # 1 s and grows x1.6 up to 120 s, so calls kept failing fast (UNAVAILABLE) for seconds after
    # the service was back; connection attempts on one host are cheap.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1_000),
]

_RETRY_POLICY = {
    "maxAttempts": 4,
    "initialBackoff": "0.05s",
    "maxBackoff": "1s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE"],
}


# Servers send GOAWAY to a connection this old, so that its client resolves the target again and
# spreads new calls over replicas that came up since. Calls in flight may go on for the grace
# period (a watch stream longer than that is cut and resumes with after_version).
MAX_CONNECTION_AGE_MS = 30_000
MAX_CONNECTION_AGE_GRACE_MS = 300_000
CONNECTION_AGE_SERVER_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.max_connection_age_ms", MAX_CONNECTION_AGE_MS),
    ("grpc.max_connection_age_grace_ms", MAX_CONNECTION_AGE_GRACE_MS),
]


def service_config(retryable: Iterable[tuple[str, str]]) -> str:
    """Service config JSON: round-robin over every address of the target, and retries of
    UNAVAILABLE for the given (service, method) pairs."""
    config: dict[str, Any] = {"loadBalancingConfig": [{"round_robin": {}}]}
    names = [{"service": service, "method": method} for service, method in retryable]
    if names:
        config["methodConfig"] = [{"name": names, "retryPolicy": _RETRY_POLICY}]
    return json.dumps(config)


_REQUEST_ID_KEY = "x-request-id"


def _with_request_id(metadata: Any) -> Any:
    """The call's metadata with the current request id as its one `x-request-id`."""
    request_id = request_id_var.get()
    if not request_id:
        return metadata
    if not metadata:
        return ((_REQUEST_ID_KEY, request_id),)
    return (*((key, value) for key, value in metadata if key != _REQUEST_ID_KEY), (_REQUEST_ID_KEY, request_id))


class _CarriesRequestId:
    """A unary-unary or unary-stream method of the channel: the call, with the request id."""

    __slots__ = ("_call",)

    def __init__(self, call: Callable[..., Any]) -> None:
        self._call = call

    def __call__(self, request: Any, *, metadata: Any = None, **options: Any) -> Any:
        return self._call(request, metadata=_with_request_id(metadata), **options)


class RequestIdChannel(grpc.aio.Channel):
    """grpc.aio's channel, whose unary calls carry the current request id. Added where the call
    is made rather than by a client interceptor: grpc.aio runs a channel's interceptors in a
    task of their own for every call, and keeps the call behind a proxy."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._channel = channel

    def unary_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return _CarriesRequestId(self._channel.unary_unary(method, *args, **kwargs))

    def unary_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return _CarriesRequestId(self._channel.unary_stream(method, *args, **kwargs))

    # Client streaming: no method of ours has it.
    def stream_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._channel.stream_unary(method, *args, **kwargs)

    def stream_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._channel.stream_stream(method, *args, **kwargs)

    async def close(self, grace: float | None = None) -> None:
        await self._channel.close(grace)

    def get_state(self, try_to_connect: bool = False) -> grpc.ChannelConnectivity:
        return self._channel.get_state(try_to_connect)

    async def wait_for_state_change(self, last_observed_state: grpc.ChannelConnectivity) -> None:
        await self._channel.wait_for_state_change(last_observed_state)

    async def channel_ready(self) -> None:
        await self._channel.channel_ready()

    async def __aenter__(self) -> RequestIdChannel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._channel.close(None)


def open_channel(
    target: str, retryable: Iterable[tuple[str, str]] = (), tls: TlsFiles | None = None
) -> grpc.aio.Channel:
    """Plaintext, or mutual TLS with `tls` (common/tls.py); its calls carry the request id."""
    options = [
        *KEEPALIVE_CLIENT_OPTIONS,
        *RECONNECT_OPTIONS,
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.enable_retries", 1),
        ("grpc.service_config", service_config(retryable)),
    ]
    # The tracing interceptor, only when tracing is on (it puts `traceparent` in): with none,
    # grpc.aio makes each call directly. The stubs know only the sync interceptor types.
    interceptors: Any = client_interceptors()
    if tls is not None:
        options += tls.channel_options()
        channel = grpc.aio.secure_channel(target, tls.channel_credentials(), options, interceptors=interceptors)
    else:
        channel = grpc.aio.insecure_channel(target, options=options, interceptors=interceptors)
    return RequestIdChannel(channel)

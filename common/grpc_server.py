"""Building and running a grpc.aio server: health, reflection, what runs around every call
(common/grpc_handlers.py), and a graceful shutdown on SIGTERM / Ctrl-C."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeAlias

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer

from common.db import Database
from common.db_health import LIVENESS, DatabaseHealth
from common.grpc_client import CONNECTION_AGE_SERVER_OPTIONS, KEEPALIVE_SERVER_OPTIONS, MAX_MESSAGE_BYTES
from common.grpc_handlers import CallLog, Handler, Hook, wrap_handler
from common.grpc_tracing import server_spans
from common.loop_lag import monitor_loop_lag
from common.reflection import enable_reflection
from common.service_metrics import CallMetrics
from common.tls import TlsFiles

log = logging.getLogger(__name__)

# How long in-flight calls may run on after SIGTERM before they are cut off.
SHUTDOWN_GRACE_S = 10.0

GenericHandler: TypeAlias = "grpc.GenericRpcHandler[Any, Any]"


def create_grpc_server(
    service_names: Iterable[str],
    register: Callable[[grpc.aio.Server], None],
    host: str,
    port: int,
    tls: TlsFiles | None = None,
    hooks: Sequence[Hook] = (),
) -> tuple[grpc.aio.Server, HealthServicer, int]:
    """A server with the servicers `register` adds, health and reflection, bound to host:port
    (port 0 picks a free one, for tests), plaintext or mutual TLS (`tls`, common/tls.py). Around
    every call: the span, the metrics, the request id and log line, then `hooks` (the caller
    policy). Returns the server, its health servicer and the port."""
    spans = server_spans()
    around: list[Hook] = [*([spans] if spans is not None else []), CallMetrics(), CallLog(), *hooks]
    options = [
        *KEEPALIVE_SERVER_OPTIONS,
        *CONNECTION_AGE_SERVER_OPTIONS,
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ]
    server = HookedServer(grpc.aio.server(options=options), around)
    register(server)
    health_servicer = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = list(service_names)
    enable_reflection([*names, health.SERVICE_NAME], server)
    address = f"{host}:{port}"
    bound = server.add_secure_port(address, tls.server_credentials()) if tls else server.add_insecure_port(address)
    if bound == 0:
        raise SystemExit(f"cannot listen on {host}:{port}")
    return server, health_servicer, bound


class _WrappedGeneric(grpc.GenericRpcHandler):  # type: ignore[type-arg]
    """A generic handler (reflection v1, a method no service registered) whose methods are
    wrapped once each, the first time one is asked for."""

    def __init__(self, inner: GenericHandler, hooks: tuple[Hook, ...]) -> None:
        self.inner, self.hooks = inner, hooks
        self._wrapped: dict[str, Handler] = {}

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> Handler | None:
        method = handler_call_details.method
        wrapped = self._wrapped.get(method)
        if wrapped is None:
            # Not kept when there is no such method: any caller may send any name.
            wrapped = wrap_handler(self.inner.service(handler_call_details), method, self.hooks)
            if wrapped is not None:
                self._wrapped[method] = wrapped
        return wrapped


class HookedServer(grpc.aio.Server):
    """A grpc.aio server whose every method runs wrapped with `hooks` (outermost first). The
    handlers are wrapped as they are added, not by a server interceptor: grpc.aio awaits its
    interceptors on every call, only to be handed the same handler each time."""

    def __init__(self, server: grpc.aio.Server, hooks: Sequence[Hook]) -> None:
        self.server, self.hooks = server, tuple(hooks)

    def add_generic_rpc_handlers(self, generic_rpc_handlers: Iterable[GenericHandler]) -> None:
        self.server.add_generic_rpc_handlers([_WrappedGeneric(h, self.hooks) for h in generic_rpc_handlers])

    def add_registered_method_handlers(self, service_name: str, method_handlers: dict[str, Handler]) -> None:
        wrapped = {name: wrap_handler(h, f"/{service_name}/{name}", self.hooks) for name, h in method_handlers.items()}
        self.server.add_registered_method_handlers(service_name, wrapped)  # type: ignore[attr-defined]

    def add_insecure_port(self, address: str) -> int:
        return self.server.add_insecure_port(address)

    def add_secure_port(self, address: str, server_credentials: grpc.ServerCredentials) -> int:
        return self.server.add_secure_port(address, server_credentials)

    async def start(self) -> None:
        await self.server.start()

    async def stop(self, grace: float | None = None) -> None:
        await self.server.stop(grace)

    async def wait_for_termination(self, timeout: float | None = None) -> bool:
        return await self.server.wait_for_termination(timeout)


async def run_until_signalled(
    server: grpc.aio.Server,
    health_servicer: HealthServicer,
    service_names: Iterable[str],
    on_stop: Callable[[], Awaitable[None]] | None = None,
    on_draining: Callable[[], None] | None = None,
    database: Database | None = None,
) -> None:
    """Serve until SIGTERM or SIGINT; then say NOT_SERVING, let calls in flight finish, stop.
    `on_draining` runs before the grace period, to end calls that would never finish (streams).
    Meanwhile the health follows `database` (common/db_health.py)."""
    await server.start()
    names = list(service_names)
    for name in [*names, "", LIVENESS]:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    probe = DatabaseHealth(database, health_servicer, names) if database is not None else None
    if probe is not None:
        probe.start()
    lag = monitor_loop_lag()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down", extra={"grace_s": SHUTDOWN_GRACE_S})
    if probe is not None:
        await probe.stop()
    lag.cancel()
    await health_servicer.enter_graceful_shutdown()
    # Logged after the change, so that the log proves the order: NOT_SERVING, then refusals.
    log.info("health NOT_SERVING; draining calls in flight")
    if on_draining is not None:
        on_draining()
    await server.stop(SHUTDOWN_GRACE_S)
    if on_stop is not None:
        await on_stop()
    log.info("stopped")

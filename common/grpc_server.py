"""Building and running a grpc.aio server: health, reflection, the error boundary, request ids,
logs, and a graceful shutdown on SIGTERM / Ctrl-C."""

from __future__ import annotations

import asyncio
import inspect
import logging
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import suppress
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer

from common.db import Database
from common.db_health import LIVENESS, DatabaseHealth
from common.errors import REPLAYED_KEY, STATUS_DETAILS_KEY, ServiceError
from common.grpc_client import CONNECTION_AGE_SERVER_OPTIONS, KEEPALIVE_SERVER_OPTIONS, MAX_MESSAGE_BYTES
from common.grpc_tracing import status_code, trace_handler
from common.interceptors import Handler, WrappingInterceptor
from common.logs import adopt_request_id, request_id_var
from common.loop_lag import monitor_loop_lag
from common.reflection import enable_reflection
from common.service_metrics import meter_handler
from common.tls import TlsFiles

log = logging.getLogger(__name__)

# How long in-flight calls may run on after SIGTERM before they are cut off.
SHUTDOWN_GRACE_S = 10.0


class ServiceInterceptor(WrappingInterceptor):
    """Per call: adopt the caller's `x-request-id`, log the outcome, and map ServiceError (and
    any unexpected exception) to a gRPC status. The one boundary between domain and wire."""

    def wrap(self, handler: Handler | None, method: str) -> Handler | None:
        # Outermost the span (when tracing is on), so that it is current in the call's log line.
        return trace_handler(meter_handler(_wrap(handler, method), method), method)


def _wrap(handler: grpc.RpcMethodHandler[Any, Any] | None, method: str) -> grpc.RpcMethodHandler[Any, Any] | None:
    if handler is None:
        return None
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(
            _wrap_unary(handler.unary_unary, method),
            request_deserializer=_tolerant(handler.request_deserializer),
            response_serializer=handler.response_serializer,
        )
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(
            _wrap_stream(handler.unary_stream, method),
            request_deserializer=_tolerant(handler.request_deserializer),
            response_serializer=handler.response_serializer,
        )
    return handler


def _request_id(context: grpc.aio.ServicerContext[Any, Any]) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == "x-request-id" and isinstance(value, str):
            return adopt_request_id(value)
    return adopt_request_id(None)


class _Undecodable:
    """Stands for a request whose bytes are not the method's message (truncated, not protobuf,
    or a string field that is not UTF-8); the handler wrapper answers INVALID_ARGUMENT. Left to
    grpc, a parse error is UNKNOWN, with the exception's class and message type in its details."""


_UNDECODABLE = _Undecodable()


def _tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserializer is None:
        return None

    def parse(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception:
            return _UNDECODABLE

    return parse


async def _refuse_undecodable(context: grpc.aio.ServicerContext[Any, Any]) -> None:
    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the request is not a valid message of this method")


async def _abort(context: grpc.aio.ServicerContext[Any, Any], exc: Exception, method: str) -> None:
    if isinstance(exc, ServiceError):
        status = exc.to_status()
        trailing: tuple[tuple[str, str | bytes], ...] = ((STATUS_DETAILS_KEY, status.SerializeToString()),)
        if exc.replayed:
            trailing += ((REPLAYED_KEY, "true"),)
        await context.abort(exc.code, exc.message, trailing_metadata=trailing)
    log.exception("unhandled error", extra={"rpc": method})
    await context.abort(grpc.StatusCode.INTERNAL, "internal error")


def _log_call(method: str, context: grpc.aio.ServicerContext[Any, Any], started: float) -> None:
    name = status_code(context.code()).name
    # Health checks come every few seconds from every probe: not worth a line each at INFO.
    log.log(
        logging.DEBUG if method.startswith("/grpc.health.") else logging.INFO,
        "rpc",
        extra={"rpc": method, "status": name, "duration_ms": round((time.perf_counter() - started) * 1000, 2)},
    )


def _wrap_unary(inner: Any, method: str) -> Any:
    async def handle(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        token = request_id_var.set(_request_id(context))
        started = time.perf_counter()
        try:
            if request is _UNDECODABLE:
                await _refuse_undecodable(context)
            return await inner(request, context)
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await _abort(context, exc, method)
        finally:
            _log_call(method, context, started)
            request_id_var.reset(token)

    return handle


def _wrap_stream(inner: Any, method: str) -> Any:
    if not inspect.isasyncgenfunction(inner):
        # A streaming handler that writes with `context.write` and returns (grpc.health.v1's
        # Watch does): grpc.aio calls it as a coroutine, so the wrapper must be one too.
        return _wrap_unary(inner, method)

    async def handle(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
        token = request_id_var.set(_request_id(context))
        started = time.perf_counter()
        try:
            if request is _UNDECODABLE:
                await _refuse_undecodable(context)
            async for response in inner(request, context):
                yield response
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await _abort(context, exc, method)
        finally:
            _log_call(method, context, started)
            # When the caller hangs up, grpc.aio may leave this generator to asyncio's finalizer,
            # which closes it in a task of its own — another Context, where the token cannot be
            # reset (ValueError, logged as "Task exception was never retrieved"). The call's own
            # Context ends with the call, so there is nothing to undo then.
            with suppress(ValueError):
                request_id_var.reset(token)

    return handle


def create_grpc_server(
    service_names: Iterable[str],
    register: Callable[[grpc.aio.Server], None],
    host: str,
    port: int,
    tls: TlsFiles | None = None,
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),  # type: ignore[type-arg]
) -> tuple[grpc.aio.Server, HealthServicer, int]:
    """A server with the servicers `register` adds, health and reflection, bound to host:port
    (port 0 picks a free one, for tests), plaintext or mutual TLS (`tls`, common/tls.py);
    `interceptors` run after the error boundary. Returns the server, its health servicer and
    the port."""
    server = grpc.aio.server(
        interceptors=[ServiceInterceptor(), *interceptors],
        options=[
            *KEEPALIVE_SERVER_OPTIONS,
            *CONNECTION_AGE_SERVER_OPTIONS,
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ],
    )
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

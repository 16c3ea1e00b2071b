"""One way to wrap a gRPC method's handler: the service boundary, and hooks around every call.

grpc.aio calls three kinds of handler (`Kind`): a unary one, which returns its answer; a server
stream written as an async generator, which yields; and a server stream that writes with
`context.write` and returns (grpc.health.v1's Watch). `wrap_handler` is the one place that knows
all three. Around each call it runs:

- the hooks (`Hook`), outermost first: each is told when the call starts (a start may refuse the
  call by raising a ServiceError), when a stream's first message goes out, and when the call
  ends, with its status code. The services' hooks, in order: the span (grpc_tracing.py), the
  metrics (service_metrics.py), the request id and the call's log line (`CallLog`, here), the
  caller policy (authz.py);
- the service boundary, the one place between domain and wire: a request whose bytes are not
  the method's message is INVALID_ARGUMENT (left to grpc, a parse error is UNKNOWN, with the
  exception's class in its details); a ServiceError becomes its status with rich details
  (common/errors.py); anything else is INTERNAL, with nothing for the caller and a traceback
  in the log.

`common.grpc_server.HookedServer` wraps each method's handler once, as it is added to the
server (a generic handler's, the first time the method is called), and keeps it: a wrapper built per call would
be paid for on every call (bench/README.md).
A hook may leave a method alone (`for_method` returns None): nothing of it runs for that method.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import suppress
from enum import Enum
from typing import Any, NoReturn, Protocol, TypeAlias

import grpc

from common.errors import REPLAYED_KEY, STATUS_DETAILS_KEY, ServiceError
from common.logs import adopt_request_id, request_id_var

log = logging.getLogger(__name__)

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"
# A string: grpc's classes are generic only in its type stubs.
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"

# What every service serves beside its own API: health checks (probes call them every few
# seconds) and reflection (for people with grpcurl). Open to any caller, and not traced.
INFRASTRUCTURE_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")

_BY_VALUE = {code.value[0]: code for code in grpc.StatusCode}


class Kind(Enum):
    UNARY = "unary"
    STREAM = "stream"  # an async generator
    WRITTEN_STREAM = "written stream"  # writes with context.write, then returns


class CallHook(Protocol):
    """What a hook does around each call of one method. `start`'s value is handed back to the
    others (a span, a start time)."""

    def start(self, context: Context) -> Any: ...

    def first_message(self, state: Any) -> None: ...

    def end(self, state: Any, context: Context, code: grpc.StatusCode) -> None: ...


class Hook(Protocol):
    def for_method(self, method: str, kind: Kind) -> CallHook | None:
        """What to do around each call of `method` (`/package.Service/Method`); None: nothing."""
        ...


def status_code(code: object) -> grpc.StatusCode:
    """What `ServicerContext.code()` said (None until a status is set: OK), as a StatusCode."""
    if code is None:
        return grpc.StatusCode.OK
    if isinstance(code, grpc.StatusCode):
        return code
    return _BY_VALUE.get(code, grpc.StatusCode.UNKNOWN) if isinstance(code, int) else grpc.StatusCode.UNKNOWN


def kind_of(handler: Handler) -> Kind | None:
    """None for the kinds no service of ours has (client or bidirectional streaming)."""
    if handler.unary_unary:
        return Kind.UNARY
    if handler.unary_stream:
        return Kind.STREAM if inspect.isasyncgenfunction(handler.unary_stream) else Kind.WRITTEN_STREAM
    return None


def wrap_handler(handler: Handler | None, method: str, hooks: Sequence[Hook]) -> Handler | None:
    """The handler that runs for `method` instead of `handler` (None: no such method)."""
    if handler is None or (kind := kind_of(handler)) is None:
        return handler
    around = tuple(h for h in (hook.for_method(method, kind) for hook in hooks) if h is not None)
    deserializer = _tolerant(handler.request_deserializer)
    # grpc's stubs type the handlers as sync callables; grpc.aio's are coroutine functions.
    inner: Any = handler.unary_unary or handler.unary_stream
    if kind is Kind.STREAM:
        return grpc.unary_stream_rpc_method_handler(
            _stream(inner, method, around), deserializer, handler.response_serializer
        )
    if kind is Kind.WRITTEN_STREAM:
        return grpc.unary_stream_rpc_method_handler(
            _call(inner, method, around), deserializer, handler.response_serializer
        )
    return grpc.unary_unary_rpc_method_handler(
        _call(inner, method, around), deserializer, handler.response_serializer
    )


def _call(inner: Callable[[Any, Context], Awaitable[Any]], method: str, hooks: tuple[CallHook, ...]) -> Any:
    """A unary handler, or a stream that writes with context.write: one await."""

    async def handle(request: Any, context: Context) -> Any:
        async with _Boundary(method, hooks, request, context):
            return await inner(request, context)

    return handle


def _stream(inner: Callable[[Any, Context], AsyncIterator[Any]], method: str, hooks: tuple[CallHook, ...]) -> Any:
    async def handle(request: Any, context: Context) -> AsyncIterator[Any]:
        async with _Boundary(method, hooks, request, context) as call:
            async for response in inner(request, context):
                call.sending()
                yield response

    return handle


class _Boundary:
    """One call: its hooks started on the way in (any may refuse the call), a request that could
    not be read refused, the outcome mapped to a status on the way out, the hooks ended."""

    __slots__ = ("context", "first", "hooks", "method", "request", "started")

    def __init__(self, method: str, hooks: tuple[CallHook, ...], request: Any, context: Context) -> None:
        self.method, self.hooks, self.request, self.context = method, hooks, request, context
        self.started: list[tuple[CallHook, Any]] = []
        self.first = True

    async def __aenter__(self) -> _Boundary:
        try:
            for hook in self.hooks:
                self.started.append((hook, hook.start(self.context)))
            if self.request is _UNDECODABLE:
                await self.context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT, "the request is not a valid message of this method"
                )
        except BaseException as exc:
            await self.__aexit__(type(exc), exc, exc.__traceback__)
        return self

    def sending(self) -> None:
        """A stream's message is going out: the hooks hear of the first."""
        if self.first:
            self.first = False
            for hook, state in self.started:
                hook.first_message(state)

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        try:
            if exc is not None:
                await _fail(self.context, exc, self.method)
        finally:
            cancelled = isinstance(exc, asyncio.CancelledError)
            code = grpc.StatusCode.CANCELLED if cancelled else status_code(self.context.code())
            for hook, state in reversed(self.started):
                hook.end(state, self.context, code)


async def _fail(context: Context, exc: BaseException, method: str) -> NoReturn:
    """The boundary: a ServiceError becomes its status, any other error INTERNAL (both raise
    grpc's AbortError); an abort, a cancellation (the caller went away, or its deadline passed)
    and a stream closed by grpc go on as they are."""
    if isinstance(exc, Exception) and not isinstance(exc, grpc.aio.AbortError):
        if isinstance(exc, ServiceError):
            status = exc.to_status()
            trailing: tuple[tuple[str, str | bytes], ...] = ((STATUS_DETAILS_KEY, status.SerializeToString()),)
            if exc.replayed:
                trailing += ((REPLAYED_KEY, "true"),)
            await context.abort(exc.code, exc.message, trailing_metadata=trailing)
        log.exception("unhandled error", extra={"rpc": method})
        await context.abort(grpc.StatusCode.INTERNAL, "internal error")
    raise exc


class _Undecodable:
    """Stands for a request whose bytes are not the method's message (truncated, not protobuf,
    or a string field that is not UTF-8)."""


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


class CallLog:
    """The call's request id — the caller's `x-request-id` when it is well-formed, else a new
    one — in every line logged while it runs, and one line when it ends."""

    def for_method(self, method: str, kind: Kind) -> CallHook:
        # Health checks come every few seconds from every probe: not worth a line each at INFO.
        return _MethodLog(method, logging.DEBUG if method.startswith("/grpc.health.") else logging.INFO)


class _MethodLog:
    __slots__ = ("level", "method")

    def __init__(self, method: str, level: int) -> None:
        self.method = method
        self.level = level

    def start(self, context: Context) -> tuple[Any, float]:
        given = next((v for k, v in context.invocation_metadata() or () if k == "x-request-id"), None)
        token = request_id_var.set(adopt_request_id(given if isinstance(given, str) else None))
        return token, time.perf_counter()

    def first_message(self, state: Any) -> None:
        return None

    def end(self, state: tuple[Any, float], context: Context, code: grpc.StatusCode) -> None:
        token, started = state
        if log.isEnabledFor(self.level):
            duration_ms = round((time.perf_counter() - started) * 1000, 2)
            log.log(self.level, "rpc", extra={"rpc": self.method, "status": code.name, "duration_ms": duration_ms})
        # When the caller hangs up, grpc.aio may leave a stream's generator to asyncio's
        # finalizer, which closes it in a task of its own — another Context, where the token
        # cannot be reset (ValueError). The call's own Context ends with the call anyway.
        with suppress(ValueError):
            request_id_var.reset(token)

"""The one wrapper of a gRPC handler (common/grpc_handlers.py) on a real grpc.aio server in this
process: the three kinds of handler, the hooks around them in order, and the service boundary."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from common.errors import NotFound, PermissionDenied, rich_status
from common.grpc_client import open_channel
from common.grpc_handlers import Context, Kind
from common.grpc_server import create_grpc_server
from common.logs import request_id_var

SERVICE = "test.Hooks"


class Recorder:
    """A hook that writes down what it is told, under its name; `refuse` makes its start fail."""

    def __init__(self, name: str, events: list[tuple[str, ...]], refuse: bool = False) -> None:
        self.name, self.events, self.refuse = name, events, refuse
        self.ended = asyncio.Event()

    def for_method(self, method: str, kind: Kind) -> Recorder | None:
        if method.startswith("/grpc."):
            return None
        self.events.append((self.name, "wrap", method.rsplit("/", 1)[-1], kind.value))
        return self

    def start(self, context: Context) -> str:
        self.events.append((self.name, "start"))
        if self.refuse:
            raise PermissionDenied("not you")
        return self.name

    def first_message(self, state: str) -> None:
        self.events.append((state, "first"))

    def end(self, state: str, context: Context, code: grpc.StatusCode) -> None:
        self.events.append((state, "end", code.name))
        self.ended.set()


async def say(request: bytes, context: Any) -> bytes:
    return (request_id_var.get() or "").encode()


async def missing(request: bytes, context: Any) -> bytes:
    raise NotFound("nothing here")


async def broken(request: bytes, context: Any) -> bytes:
    raise RuntimeError("a bug")


async def count(request: bytes, context: Any) -> AsyncIterator[bytes]:
    for n in (b"1", b"2"):
        yield n


async def write(request: bytes, context: Any) -> None:
    await context.write(b"written")


def refuse_to_parse(data: bytes) -> bytes:
    raise ValueError("not a message")


HANDLERS = {
    "Say": grpc.unary_unary_rpc_method_handler(say),
    "Missing": grpc.unary_unary_rpc_method_handler(missing),
    "Broken": grpc.unary_unary_rpc_method_handler(broken),
    "Count": grpc.unary_stream_rpc_method_handler(count),
    "Write": grpc.unary_stream_rpc_method_handler(write),
    "Unreadable": grpc.unary_unary_rpc_method_handler(say, request_deserializer=refuse_to_parse),
}


async def serve(*hooks: Recorder, registered: bool = False) -> tuple[grpc.aio.Server, grpc.aio.Channel]:
    """`registered`: the handlers added as generated code adds them (grpcio ≥ 1.63), looked up by
    name before any generic handler; else as one generic handler."""

    def register(server: grpc.aio.Server) -> None:
        if registered:
            server.add_registered_method_handlers(SERVICE, HANDLERS)  # type: ignore[attr-defined]
        else:
            server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, HANDLERS),))

    server, _, port = create_grpc_server([SERVICE], register, "127.0.0.1", 0, hooks=hooks)
    await server.start()
    return server, open_channel(f"127.0.0.1:{port}")


def unary(channel: grpc.aio.Channel, method: str) -> Any:
    return channel.unary_unary(f"/{SERVICE}/{method}", request_serializer=None, response_deserializer=None)


async def call(method: str, stream: bool = False, registered: bool = False, **kwargs: Any) -> Any:
    """One call on a server with two recording hooks; returns the answer and the events."""
    recorded: list[tuple[str, ...]] = []
    server, channel = await serve(Recorder("outer", recorded), Recorder("inner", recorded), registered=registered)
    try:
        path = f"/{SERVICE}/{method}"
        if stream:
            stream_of = channel.unary_stream(path, request_serializer=None, response_deserializer=None)
            answer: Any = [m async for m in stream_of(b"", timeout=5)]
        else:
            answer = await unary(channel, method)(b"", timeout=5, **kwargs)
    except grpc.aio.AioRpcError as error:
        answer = error
    finally:
        await channel.close(None)
        await server.stop(None)
    return answer, [e for e in recorded if e[1] != "wrap"], [e for e in recorded if e[1] == "wrap"]


async def test_hooks_start_outermost_first_and_end_innermost_first() -> None:
    answer, events, wrapped = await call("Say", metadata=(("x-request-id", "req-from-caller"),))
    assert answer == b"req-from-caller"  # the boundary adopted the caller's request id
    assert wrapped == [("outer", "wrap", "Say", "unary"), ("inner", "wrap", "Say", "unary")]
    assert events == [("outer", "start"), ("inner", "start"), ("inner", "end", "OK"), ("outer", "end", "OK")]


async def test_registered_methods_are_wrapped_as_generic_ones_are() -> None:
    answer, events, wrapped = await call("Say", registered=True, metadata=(("x-request-id", "req-registered"),))
    assert answer == b"req-registered"
    # All of them as they are added, each once: not per call.
    assert len(wrapped) == 2 * len(HANDLERS)
    assert [w[0] for w in wrapped if w[2] == "Say"] == ["outer", "inner"]
    assert events == [("outer", "start"), ("inner", "start"), ("inner", "end", "OK"), ("outer", "end", "OK")]
    error, events, _ = await call("Missing", registered=True)
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert events[-1] == ("outer", "end", "NOT_FOUND")


async def test_a_call_carries_the_request_id_in_force_as_its_only_one() -> None:
    """open_channel's calls say whose request they serve: the id in force where the call is
    made, in place of one the caller may have put in the metadata itself."""
    token = request_id_var.set("req-in-force")
    try:
        plain, _, _ = await call("Say")
        replaced, _, _ = await call("Say", metadata=(("x-request-id", "req-stale"), ("other", "kept")))
        stream, _, _ = await call("Count", stream=True)
    finally:
        request_id_var.reset(token)
    assert plain == replaced == b"req-in-force"
    assert stream == [b"1", b"2"]


async def test_without_a_request_id_in_force_the_server_makes_one() -> None:
    answer, _, _ = await call("Say")
    assert answer.startswith(b"req_")


async def test_a_service_error_is_its_status_with_details() -> None:
    error, events, _ = await call("Missing")
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error.details() == "nothing here"
    assert rich_status(error) is not None
    assert events[-1] == ("outer", "end", "NOT_FOUND")


async def test_any_other_error_is_internal_and_says_nothing() -> None:
    error, events, _ = await call("Broken")
    assert (error.code(), error.details()) == (grpc.StatusCode.INTERNAL, "internal error")
    assert events[-1] == ("outer", "end", "INTERNAL")


async def test_an_unreadable_request_is_invalid_argument() -> None:
    error, _, _ = await call("Unreadable")
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_stream_tells_its_first_message_once() -> None:
    answer, events, wrapped = await call("Count", stream=True)
    assert answer == [b"1", b"2"]
    assert wrapped[0] == ("outer", "wrap", "Count", "stream")
    assert events == [
        ("outer", "start"),
        ("inner", "start"),
        ("outer", "first"),
        ("inner", "first"),
        ("inner", "end", "OK"),
        ("outer", "end", "OK"),
    ]


async def test_a_written_stream_is_wrapped_as_one_await() -> None:
    answer, events, wrapped = await call("Write", stream=True)
    assert answer == [b"written"]
    assert wrapped[0] == ("outer", "wrap", "Write", "written stream")
    assert ("outer", "first") not in events


async def test_a_hook_may_refuse_the_call_before_it_runs() -> None:
    recorded: list[tuple[str, ...]] = []
    server, channel = await serve(Recorder("outer", recorded), Recorder("policy", recorded, refuse=True))
    try:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await unary(channel, "Say")(b"", timeout=5)
    finally:
        await channel.close(None)
        await server.stop(None)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # The hook that refused never started; the one outside it still ends, with the refusal.
    assert [e for e in recorded if e[1] != "wrap"] == [
        ("outer", "start"),
        ("policy", "start"),
        ("outer", "end", "PERMISSION_DENIED"),
    ]


async def test_a_cancelled_call_ends_as_cancelled() -> None:
    recorded: list[tuple[str, ...]] = []
    started = asyncio.Event()

    async def slow(request: bytes, context: Any) -> bytes:
        started.set()
        await asyncio.Event().wait()
        return b""

    HANDLERS["Slow"] = grpc.unary_unary_rpc_method_handler(slow)
    outer = Recorder("outer", recorded)
    server, channel = await serve(outer)
    try:
        pending = unary(channel, "Slow")(b"", timeout=5)
        await started.wait()
        pending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await pending
        await asyncio.wait_for(outer.ended.wait(), 5)
        assert recorded[-1] == ("outer", "end", "CANCELLED")
    finally:
        del HANDLERS["Slow"]
        await channel.close(None)
        await server.stop(None)

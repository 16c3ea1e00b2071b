"""The base of our server interceptors: each method's handler is wrapped once, the first time
the method is called, and kept. Building the wrapper per call cost about a quarter of the payment
service's CPU per `Charge` in `make bench`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias

import grpc

# What every service serves beside its own API: health checks (probes call them every few
# seconds) and reflection (for people with grpcurl). Open to any caller, and not traced.
INFRASTRUCTURE_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")

# A string: grpc's classes are generic only in its type stubs.
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"


class WrappingInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    def __init__(self) -> None:
        self._wrapped: dict[str, Handler | None] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler:
        method = handler_call_details.method
        if method not in self._wrapped:
            self._wrapped[method] = self.wrap(await continuation(handler_call_details), method)
        return self._wrapped[method]  # type: ignore[return-value]

    def wrap(self, handler: Handler | None, method: str) -> Handler | None:
        """The handler that runs for `method` instead of `handler` (None: no such method)."""
        raise NotImplementedError

"""Server reflection v1, the version grpcurl ≥ 1.9 asks first, as a reflection-only client uses
it: list the services, fetch their descriptors, and call a method knowing nothing but those.

grpc.reflection.v1 and v1alpha have the same messages field for field, so v1alpha's classes
encode exactly the bytes a v1 client sends; what makes it v1 is the method's path."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpc_reflection.v1alpha import reflection_pb2

from tests.harness import Stack
from tests.integration.helpers import create_order

V1_METHOD = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"


class ReflectionV1:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._call = channel.stream_stream(
            V1_METHOD,
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )

    async def ask(self, request: reflection_pb2.ServerReflectionRequest) -> reflection_pb2.ServerReflectionResponse:
        async def one() -> AsyncIterator[reflection_pb2.ServerReflectionRequest]:
            yield request

        replies = [reply async for reply in self._call(one(), timeout=5)]
        assert len(replies) == 1
        assert not replies[0].HasField("error_response"), replies[0].error_response
        return replies[0]

    async def services(self) -> set[str]:
        reply = await self.ask(reflection_pb2.ServerReflectionRequest(list_services=""))
        return {service.name for service in reply.list_services_response.service}

    async def pool_for(self, symbol: str) -> descriptor_pool.DescriptorPool:
        """A fresh pool with the file that defines `symbol` and every file it imports."""
        reply = await self.ask(reflection_pb2.ServerReflectionRequest(file_containing_symbol=symbol))
        files = {}
        for raw in reply.file_descriptor_response.file_descriptor_proto:
            proto = descriptor_pb2.FileDescriptorProto.FromString(raw)
            files[proto.name] = proto
        pool = descriptor_pool.DescriptorPool()
        added: set[str] = set()

        def add(name: str) -> None:
            if name not in added:
                for dependency in files[name].dependency:
                    add(dependency)
                pool.Add(files[name])
                added.add(name)

        for name in files:
            add(name)
        return pool


@pytest.mark.parametrize(
    ("target", "own"),
    [
        # The order service's events feed and webhooks (docs/webhooks.md) beside its OrderService.
        ("order_target", {"shop.order.v1.OrderService", "shop.order.v1.EventService", "shop.order.v1.WebhookService"}),
        ("payment_target", {"shop.payment.v1.PaymentService"}),
    ],
)
async def test_v1_lists_and_describes_every_service(stack: Stack, target: str, own: set[str]) -> None:
    async with grpc.aio.insecure_channel(getattr(stack, target)) as channel:
        reflection = ReflectionV1(channel)
        services = await reflection.services()
        assert services == {
            *own,
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
        }
        for name in services:  # grpcurl's `describe`: every listed service resolves
            pool = await reflection.pool_for(name)
            assert pool.FindServiceByName(name).methods
        v1 = (await reflection.pool_for("grpc.reflection.v1.ServerReflection")).FindServiceByName(
            "grpc.reflection.v1.ServerReflection"
        )
        assert v1.file.package == "grpc.reflection.v1"
        assert v1.methods_by_name["ServerReflectionInfo"].input_type.full_name == (
            "grpc.reflection.v1.ServerReflectionRequest"
        )


async def test_v1_is_enough_to_call_a_method(stack: Stack) -> None:
    """What `grpcurl -d '{"order_id": …}' … shop.order.v1.OrderService/GetOrder` does."""
    async with stack.client() as client:
        order = await create_order(client)
    async with grpc.aio.insecure_channel(stack.order_target) as channel:
        pool = await ReflectionV1(channel).pool_for("shop.order.v1.OrderService")
        method = pool.FindMethodByName("shop.order.v1.OrderService.GetOrder")
        request_class = message_factory.GetMessageClass(method.input_type)
        reply_class = message_factory.GetMessageClass(method.output_type)
        get_order = channel.unary_unary(
            f"/{method.containing_service.full_name}/{method.name}",
            request_serializer=lambda message: message.SerializeToString(),
            response_deserializer=reply_class.FromString,
        )
        reply = await get_order(request_class(order_id=order["id"]), timeout=5)
    assert reply.id == order["id"]
    assert reply.amount == order["amount"]

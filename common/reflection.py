"""gRPC server reflection in both of its versions, so that tools need no .proto files:
`grpc.reflection.v1`, which grpcurl ≥ 1.9 and current tools ask first, and `v1alpha`, which
older ones ask. grpcio-reflection (1.85) serves only v1alpha (grpc/grpc#38576).

The two versions are the same messages, field for field, in another package: v1 is served by
the same servicer under v1's method name, with v1alpha's (de)serializers. v1's descriptor,
v1alpha's renamed, goes into the descriptor pool, so that `describe` finds it as well.
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc

V1_SERVICE_NAME = "grpc.reflection.v1.ServerReflection"
_V1_PACKAGE = "grpc.reflection.v1"
_V1_FILE = "grpc/reflection/v1/reflection.proto"


def enable_reflection(service_names: Iterable[str], server: grpc.aio.Server) -> None:
    """Serve reflection v1 and v1alpha on `server`, listing `service_names` and both versions."""
    _add_v1_descriptor(descriptor_pool.Default())
    # `reflection.aio` is the package's public asyncio servicer; its module does not re-export it
    # in a way mypy accepts.
    names = [*service_names, reflection.SERVICE_NAME, V1_SERVICE_NAME]
    servicer = reflection.aio.ReflectionServicer(names)  # type: ignore[attr-defined]
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    v1 = grpc.method_handlers_generic_handler(
        V1_SERVICE_NAME,
        {
            "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
                servicer.ServerReflectionInfo,
                request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
                response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
            )
        },
    )
    server.add_generic_rpc_handlers((v1,))


def _add_v1_descriptor(pool: descriptor_pool.DescriptorPool) -> None:
    try:
        pool.FindFileByName(_V1_FILE)
        return  # added by an earlier server of this process, or by a future grpcio-reflection
    except KeyError:
        pass
    old = f".{reflection_pb2.DESCRIPTOR.package}."
    proto = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(proto)
    proto.name, proto.package = _V1_FILE, _V1_PACKAGE
    proto.ClearField("options")  # v1alpha's java_package and the like
    for message in proto.message_type:
        for field in message.field:
            if field.type_name:  # only message fields have one; setting "" would mark it present
                field.type_name = field.type_name.replace(old, f".{_V1_PACKAGE}.")
    for service in proto.service:
        for method in service.method:
            method.input_type = method.input_type.replace(old, f".{_V1_PACKAGE}.")
            method.output_type = method.output_type.replace(old, f".{_V1_PACKAGE}.")
    pool.Add(proto)

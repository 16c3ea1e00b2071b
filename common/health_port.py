"""The plaintext health-only port of a gRPC service that runs with mTLS
(docs/security.md#health-checks-under-mtls).

A probe that cannot present a client certificate — Kubernetes' native gRPC probe (the kubelet
speaks plaintext or server-only TLS), compose's healthcheck — asks here. It is a server of its
own with nothing on it but grpc.health.v1, sharing the main server's HealthServicer, so it
tells exactly what the mTLS port would (SERVING, then NOT_SERVING from SIGTERM on) and can
reach nothing else: no order, no payment, no reflection. Off unless ORDER_HEALTH_PORT or
PAYMENT_HEALTH_PORT is set; the main port keeps serving health over mTLS (the gateway's /readyz).
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from grpc_health.v1 import health_pb2_grpc
from grpc_health.v1._async import HealthServicer

from common.grpc_client import KEEPALIVE_SERVER_OPTIONS


def health_only_server(health: HealthServicer, host: str, port: int) -> tuple[grpc.aio.Server, int]:
    server = grpc.aio.server(options=KEEPALIVE_SERVER_OPTIONS)
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise SystemExit(f"cannot listen on {host}:{port} (the health port)")
    return server, bound


@dataclass(frozen=True)
class HealthPort:
    """The health-only server of a service, or none when its port is not set."""

    server: grpc.aio.Server | None = None

    @classmethod
    def open(cls, health: HealthServicer, host: str, port: int | None) -> HealthPort:
        return cls(None if port is None else health_only_server(health, host, port)[0])

    async def start(self) -> None:
        if self.server is not None:
            await self.server.start()

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop(None)

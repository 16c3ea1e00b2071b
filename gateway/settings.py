from __future__ import annotations

from pydantic import Field, field_validator

from common.settings import CommonSettings


class GatewaySettings(CommonSettings):
    gateway_host: str = "127.0.0.1"
    gateway_port: int = Field(8000, ge=0, le=65535)
    order_service_target: str = "localhost:50051"
    payment_service_target: str = "localhost:50052"
    gateway_public_url: str = "http://localhost:8000"
    gateway_deadline_s: float = Field(5, gt=0, le=300)
    sse_heartbeat_s: float = Field(15, gt=0)
    # `make bench` only: mounts POST /v1/bench/orders (gateway/routers/bench.py).
    gateway_bench_routes: bool = False

    @field_validator("gateway_public_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator

from common.settings import CommonSettings


class GatewaySettings(CommonSettings):
    gateway_host: str = "127.0.0.1"
    gateway_port: int = Field(8000, ge=0, le=65535)
    order_service_target: str = "localhost:50051"
    payment_service_target: str = "localhost:50052"
    # Unset or empty: http://localhost:<GATEWAY_PORT>, so that it follows the port.
    gateway_public_url: str = ""
    gateway_deadline_s: float = Field(5, gt=0, le=300)
    sse_heartbeat_s: float = Field(15, gt=0)
    # `make bench` only: mounts POST /v1/bench/orders (gateway/routers/bench.py).
    gateway_bench_routes: bool = False

    @model_validator(mode="before")
    @classmethod
    def _public_url_follows_the_port(cls, values: Any) -> Any:
        if isinstance(values, dict) and not values.get("gateway_public_url"):
            port = values.get("gateway_port", cls.model_fields["gateway_port"].default)
            return {**values, "gateway_public_url": f"http://localhost:{port}"}
        return values

    @field_validator("gateway_public_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

"""The payment service's settings: PAYMENT_SERVICE_HOST, PAYMENT_SERVICE_PORT,
PAYMENT_DATABASE_URL and the others of common/service.py's ServiceSettings, and its own below."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from common.db import DatabaseUrl
from common.service import ServiceSettings


class PaymentSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PAYMENT_")

    service_port: int = Field(50052, ge=0, le=65535)
    metrics_port: int = Field(9152, ge=0, le=65535)
    database_url: DatabaseUrl = "sqlite:///data/payments.db"
    # How long a payment that requires action waits for the customer's answer.
    action_timeout_s: float = Field(900, gt=0)
    # The simulated acquirer's round trip.
    processor_latency_ms: float = Field(0, ge=0)

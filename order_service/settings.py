"""The order service's settings: ORDER_SERVICE_HOST, ORDER_SERVICE_PORT, ORDER_DATABASE_URL and
the others of common/service.py's ServiceSettings, and its own below."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from common.db import DatabaseUrl
from common.service import ServiceSettings
from order_service.webhooks.settings import WebhookSettings


class OrderSettings(ServiceSettings, WebhookSettings):
    model_config = SettingsConfigDict(env_prefix="ORDER_")

    service_port: int = Field(50051, ge=0, le=65535)
    metrics_port: int = Field(9151, ge=0, le=65535)
    database_url: DatabaseUrl = "sqlite:///data/orders.db"
    # The gateway reads the same variable.
    payment_service_target: str = Field("localhost:50052", min_length=1, validation_alias="PAYMENT_SERVICE_TARGET")
    # Deadline of a call to the payment service that no caller's deadline bounds (the reconciler).
    payment_deadline_s: float = Field(5, gt=0)
    # How often the reconciler looks for due checks (a charge in doubt, an expiry, …).
    reconcile_interval_s: float = Field(1, gt=0)

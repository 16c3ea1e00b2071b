from __future__ import annotations

from pydantic import Field

from common.settings import CommonSettings


class OrderSettings(CommonSettings):
    order_service_host: str = "127.0.0.1"
    order_service_port: int = Field(50051, ge=0, le=65535)
    order_database_url: str = "sqlite:///data/orders.db"
    payment_service_target: str = "localhost:50052"
    # Deadline of a call to the payment service that no caller's deadline bounds (the reconciler).
    order_payment_deadline_s: float = Field(5, gt=0)
    # How often the reconciler looks for orders stuck in pending_payment and for expiries.
    order_reconcile_interval_s: float = Field(1, gt=0)

from __future__ import annotations

from pydantic import Field

from common.authz import CallerPolicySettings
from common.db import DatabaseUrl
from common.settings import CommonSettings
from common.tls import TlsSettings
from order_service.webhooks.settings import WebhookSettings


class OrderSettings(CommonSettings, TlsSettings, CallerPolicySettings, WebhookSettings):
    order_service_host: str = "127.0.0.1"
    order_service_port: int = Field(50051, ge=0, le=65535)
    # Prometheus text on ORDER_SERVICE_HOST:this port (0: not served).
    order_metrics_port: int = Field(9151, ge=0, le=65535)
    # The plaintext health-only port, for probes without a certificate (common/health_port.py).
    order_health_port: int | None = Field(None, ge=0, le=65535)
    order_database_url: DatabaseUrl = "sqlite:///data/orders.db"
    # PostgreSQL connections per replica (size max_connections for every replica's pool).
    order_database_pool_size: int = Field(10, ge=1, le=500)
    payment_service_target: str = Field("localhost:50052", min_length=1)
    # Deadline of a call to the payment service that no caller's deadline bounds (the reconciler).
    order_payment_deadline_s: float = Field(5, gt=0)
    # How often the reconciler looks for due checks (a charge in doubt, an expiry, …).
    order_reconcile_interval_s: float = Field(1, gt=0)

from __future__ import annotations

from pydantic import Field

from common.authz import CallerPolicySettings
from common.db import DatabaseUrl
from common.settings import CommonSettings
from common.tls import TlsSettings


class PaymentSettings(CommonSettings, TlsSettings, CallerPolicySettings):
    payment_service_host: str = "127.0.0.1"
    payment_service_port: int = Field(50052, ge=0, le=65535)
    # Prometheus text on PAYMENT_SERVICE_HOST:this port (0: not served).
    payment_metrics_port: int = Field(9152, ge=0, le=65535)
    # The plaintext health-only port, for probes without a certificate (common/health_port.py).
    payment_health_port: int | None = Field(None, ge=0, le=65535)
    payment_database_url: DatabaseUrl = "sqlite:///data/payments.db"
    # PostgreSQL connections per replica (size max_connections for every replica's pool).
    payment_database_pool_size: int = Field(10, ge=1, le=500)
    payment_action_timeout_s: float = Field(900, gt=0)
    payment_processor_latency_ms: float = Field(0, ge=0)

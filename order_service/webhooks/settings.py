"""The webhook settings of the order service (docs/webhooks.md#settings-order-service), read
with the others at start; a bad value stops the service with one line naming the variable.
Their variables carry no ORDER_ prefix (hence the aliases): the contract names them so."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode

DEFAULT_RETRY_SCHEDULE = "5,300,1800,7200,18000,36000,36000"
# Far enough apart for the most patient receiver; a longer schedule is surely a typo.
_MAX_RETRIES = 50
_MAX_DELAY_S = 7 * 24 * 3600


def parse_schedule(value: object) -> object:
    """ "5,300,1800" → (5.0, 300.0, 1800.0): the waits before the second, third … attempt."""
    if not isinstance(value, str):
        return value
    parts = [part.strip() for part in value.split(",")]
    try:
        delays = tuple(float(part) for part in parts)
    except ValueError:
        raise ValueError("expected seconds separated by commas, such as 5,300,1800") from None
    if not 1 <= len(delays) <= _MAX_RETRIES:
        raise ValueError(f"expected 1 to {_MAX_RETRIES} delays")
    if not all(0 < delay <= _MAX_DELAY_S for delay in delays):
        raise ValueError(f"every delay must be above 0 and at most {_MAX_DELAY_S} seconds")
    return delays


class WebhookSettings(BaseSettings):
    # Loopback and private addresses are refused as webhook URLs unless this is true (`make run`
    # sets it, so that a receiver on the same machine works). Link-local never is.
    webhook_allow_private_networks: bool = Field(False, validation_alias="WEBHOOK_ALLOW_PRIVATE_NETWORKS")
    # One attempt — connect, send, the answer's status and body — must finish within this.
    webhook_timeout_s: float = Field(10, gt=0, le=300, validation_alias="WEBHOOK_TIMEOUT_S")
    webhook_retry_schedule_s: Annotated[tuple[float, ...], NoDecode, BeforeValidator(parse_schedule)] = Field(
        default=DEFAULT_RETRY_SCHEDULE, validate_default=True, validation_alias="WEBHOOK_RETRY_SCHEDULE_S"
    )
    # After a rotation, the old secret signs beside the new one this long.
    webhook_secret_overlap_s: float = Field(
        86400, ge=0, le=30 * 86400, validation_alias="WEBHOOK_SECRET_OVERLAP_S"
    )
    # Where the links in a webhook's order document point (`next_action.confirm_url`): the
    # gateway's public URL, as the gateway itself is told (unset: http://localhost:<GATEWAY_PORT>).
    gateway_public_url: str = Field("", validation_alias="GATEWAY_PUBLIC_URL")
    gateway_port: int = Field(8000, ge=0, le=65535, validation_alias="GATEWAY_PORT")

    @field_validator("gateway_public_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @property
    def public_url(self) -> str:
        return self.gateway_public_url or f"http://localhost:{self.gateway_port}"

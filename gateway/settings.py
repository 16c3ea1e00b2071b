from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from common.input_limits import ACCOUNT_ID_RE
from common.settings import CommonSettings
from common.tls import TlsSettings
from gateway.api_keys import ACCOUNT_ID_RULE, KeyRing, parse_keys
from gateway.origins import origin_of, parse_origins
from gateway.ratelimit import MEMORY, Rate, parse_storage_url


def _key_ring(value: object) -> object:
    return parse_keys(value) if isinstance(value, str) else value


def _rate(value: object) -> object:
    return Rate.parse(value) if isinstance(value, str) else value


def _origins(value: object) -> object:
    return parse_origins(value) if isinstance(value, str) else value


class GatewaySettings(CommonSettings, TlsSettings):
    model_config = SettingsConfigDict(extra="ignore", frozen=True, arbitrary_types_allowed=True)

    gateway_host: str = "127.0.0.1"
    gateway_port: int = Field(8000, ge=0, le=65535)
    order_service_target: str = "localhost:50051"
    payment_service_target: str = "localhost:50052"
    # Unset or empty: http://localhost:<GATEWAY_PORT>, so that it follows the port.
    gateway_public_url: str = ""
    gateway_deadline_s: float = Field(5, gt=0, le=300)
    sse_heartbeat_s: float = Field(15, gt=0)
    # docs/security.md#api-keys: `<account_id>:<key>,…`, kept as digests only (gateway/api_keys.py);
    # no key, no gateway. The default "" is validated too, so that its absence gets a sentence.
    gateway_api_keys: Annotated[KeyRing, NoDecode, BeforeValidator(_key_ring)] = Field(
        default="", validate_default=True
    )
    # Per API key (and per client address for requests without one); a burst of twice as many.
    gateway_rate_limit: Annotated[Rate, NoDecode, BeforeValidator(_rate)] = Field(
        default="100/second", validate_default=True
    )
    # Failed authentications (an unknown key, a wrong client secret) per client address; past
    # it, that address gets 429 for everything but a valid key.
    gateway_auth_failure_limit: Annotated[Rate, NoDecode, BeforeValidator(_rate)] = Field(
        default="20/minute", validate_default=True
    )
    # Where the limits count: `memory://` in each process, or `redis://host:port/n`, one Redis
    # that every gateway replica shares (gateway/ratelimit_redis.py). Out of repr: the URL may
    # hold Redis's password.
    gateway_rate_limit_storage: Annotated[str, AfterValidator(parse_storage_url)] = Field(MEMORY, repr=False)
    # The origins (`https://shop.example`) whose pages may call /v1 from a browser (CORS) and open
    # its WebSockets; none by default (docs/security.md#browsers-on-other-sites-cors).
    gateway_cors_origins: Annotated[tuple[str, ...], NoDecode, BeforeValidator(_origins)] = ()
    # The account the demo routes (POST /demo/orders, …) create orders for; unset: no demo routes.
    gateway_demo_account: str | None = None

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
        origin_of(value)  # a host, a port that is a number: the WebSocket Origin check needs it
        return value.rstrip("/")

    @field_validator("gateway_demo_account")
    @classmethod
    def _account(cls, value: str | None) -> str | None:
        if value is not None and not ACCOUNT_ID_RE.match(value):
            raise ValueError(ACCOUNT_ID_RULE)
        return value

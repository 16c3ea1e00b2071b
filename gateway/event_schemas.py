"""The JSON shapes of the events feed and webhooks (docs/webhooks.md): request models that refuse what
the contract does not allow, and response models for OpenAPI."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway.schemas import OrderPublic

EventType = Literal["order.updated"]
# What an endpoint may subscribe to: an event type, or every type.
EnabledEvent = Literal["order.updated", "*"]
MAX_URL_LENGTH = 2048


class EventData(BaseModel):
    version: int
    order: OrderPublic


class EventPublic(BaseModel):
    id: str = Field(description="`evt_…`; the `webhook-id` of the webhooks that carry this event")
    type: EventType
    created_at: str
    data: EventData


class EventList(BaseModel):
    events: list[EventPublic]
    next_cursor: str = Field(description="Pass back as `after` for what follows (also when `events` is empty).")


class WebhookEndpointCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {
                    "url": "https://merchant.example/webhooks/shop",
                    "enabled_events": ["order.updated"],
                    "description": "order updates for fulfilment",
                }
            ]
        },
    )

    url: str = Field(
        max_length=MAX_URL_LENGTH,
        description="http:// or https://, no user info; the host must not be (or resolve to) a link-local, "
        "multicast or unspecified address, nor a loopback or private one unless the service allows it.",
    )
    enabled_events: list[EnabledEvent] = Field(default=["*"], min_length=1, max_length=20)
    description: str = Field(default="", max_length=1000)


class WebhookEndpointPublic(BaseModel):
    id: str
    url: str
    enabled_events: list[str]
    description: str
    status: Literal["enabled", "deleted"]
    created_at: str


class WebhookEndpointWithSecret(WebhookEndpointPublic):
    secret: str = Field(
        description="`whsec_` + base64 of 32 random bytes: shown only here, keep it to verify the signatures."
    )


class WebhookEndpointList(BaseModel):
    webhook_endpoints: list[WebhookEndpointPublic]


class WebhookDeliveryPublic(BaseModel):
    event_id: str
    order_id: str
    version: int
    status: Literal["pending", "succeeded", "failed"]
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: str | None = Field(description="Absent once final, and while an earlier version waits.")
    created_at: str
    updated_at: str = Field(description="When the last attempt was recorded (succeeded: when the 2xx came).")


class WebhookDeliveryList(BaseModel):
    deliveries: list[WebhookDeliveryPublic]
    next_page_token: str

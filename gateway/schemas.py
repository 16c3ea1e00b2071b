"""The REST API's JSON shapes: request models that refuse anything the contract does not allow
(strict types, no unknown fields, the limits of docs/rest-api.md#input-limits), and the documents it
answers."""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, WithJsonSchema, field_validator

# pydantic reads a TypedDict's fields only from typing_extensions' before Python 3.12.
from typing_extensions import TypedDict

# The documents the API answers are stated where they are built, for the gateway and the order
# service's webhooks alike; OpenAPI describes them from the same classes.
from common.documents import ORDER_STATUSES as ORDER_STATUSES
from common.documents import OrderPublic as OrderPublic
from common.documents import OrderStatus as OrderStatus
from common.documents import PaymentPublic as PaymentPublic
from common.input_limits import (
    CLIENT_SECRET_PATTERN,
    CURRENCIES,
    IDENTIFIER_PATTERN,
    MAX_ITEMS,
    MAX_ORDER_AMOUNT,
    MAX_QUANTITY,
    MAX_UNIT_PRICE,
)
from common.payment_methods import PAYMENT_METHODS

Identifier = Annotated[str, StringConstraints(pattern=IDENTIFIER_PATTERN)]
# Literal types (not Enum): strict validation accepts them from parsed JSON, and OpenAPI lists them.
Currency = Literal[tuple(sorted(CURRENCIES))]  # type: ignore[valid-type]
PaymentMethod = Literal[tuple(PAYMENT_METHODS)]  # type: ignore[valid-type]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class LineItem(_Strict):
    sku: Identifier
    quantity: int = Field(ge=1, le=MAX_QUANTITY)
    unit_price: int = Field(ge=0, le=MAX_UNIT_PRICE)


class OrderCreate(_Strict):
    customer_id: Identifier
    currency: Currency  # type: ignore[valid-type]
    items: list[LineItem] = Field(min_length=1, max_length=MAX_ITEMS)
    payment_method: PaymentMethod  # type: ignore[valid-type]

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {
                    "customer_id": "cus_42",
                    "currency": "EUR",
                    "items": [{"sku": "BOOK-42", "quantity": 2, "unit_price": 1299}],
                    "payment_method": "pm_card_visa",
                }
            ]
        },
    )


class RefundCreate(_Strict):
    # Documented as an integer, not a nullable one: null is refused (see _not_null).
    amount: Annotated[
        int | None,
        WithJsonSchema({"type": "integer", "minimum": 1, "maximum": MAX_ORDER_AMOUNT}),
    ] = Field(default=None, ge=1, le=MAX_ORDER_AMOUNT, description="Absent: everything left.")

    @field_validator("amount", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        # Only a missing amount means "the rest": a client that sends an unset variable as null
        # must not refund everything by accident.
        if value is None:
            raise ValueError("must be an integer; leave the field out to refund everything left")
        return value


class CancelCreate(_Strict):
    pass


class PaymentConfirm(_Strict):
    approve: bool = True
    # Instead of an API key (docs/security.md#client-secrets): the order's client secret, as the
    # phone page sends it.
    client_secret: str | None = Field(
        default=None,
        pattern=CLIENT_SECRET_PATTERN,
        description="The order's client_secret, when the request carries no API key (a browser, the phone page).",
    )


class OrderList(TypedDict):
    orders: list[OrderPublic]
    next_page_token: str


class FieldError(TypedDict):
    field: str
    message: str


# application/problem+json (RFC 9457), as gateway/errors.py writes it.
class Problem(TypedDict):
    type: str
    title: str
    status: int
    detail: str
    code: str
    request_id: str | None
    errors: NotRequired[list[FieldError]]


# For OpenAPI: the problems any /v1 operation may answer, and a change's (with an Idempotency-Key
# reused for another request: 422).
PROBLEMS: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "content": {"application/problem+json": {}}}
    for status in (400, 401, 403, 404, 409, 429, 503, 504)
}
CHANGE_PROBLEMS = {**PROBLEMS, 422: PROBLEMS[400]}

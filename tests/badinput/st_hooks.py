"""Schemathesis hooks (loaded by `tests/badinput/test_schemathesis.py` through SCHEMATHESIS_HOOKS).

Every request that carries a valid `Idempotency-Key` gets a fresh one: schemathesis draws the
same few values ("0") for unrelated requests, and a key reused with another body is rightly
refused with 422 (docs/rest-api.md#idempotency). Replays of one key are the integration tests'
business.

Every webhook endpoint URL is aimed at a host under `.invalid`, which never resolves: the
services must not be made to POST to whatever address schemathesis draws (on a CI machine with a
network, that would be the internet). Such a URL is refused with 400; the integration tests
create real endpoints.

One rule of the API cannot be written in JSON Schema: an order's total (the sum of quantity x
unit_price) must be 1-100,000,000. A body that keeps every per-field limit but breaks the total
is refused with 400, as docs/rest-api.md#input-limits says — so it is not "positive data", and it is
dropped from the cases schemathesis expects to be accepted. The hypothesis tests of the validation
rules (test_properties.py) cover those bodies instead."""

from __future__ import annotations

import uuid
from typing import Any

import schemathesis

from common.input_limits import IDEMPOTENCY_KEY_RE, MAX_ORDER_AMOUNT, MIN_ORDER_AMOUNT

NOWHERE = "https://webhooks.schemathesis.invalid/hook"


def _total(body: Any) -> int | None:
    if not isinstance(body, dict) or not isinstance(body.get("items"), list):
        return None
    total = 0
    for item in body["items"]:
        if not isinstance(item, dict):
            return None
        quantity, price = item.get("quantity"), item.get("unit_price")
        if type(quantity) is not int or type(price) is not int:
            return None
        total += quantity * price
    return total


def _has_float(value: Any) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return any(_has_float(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_float(v) for v in value)
    return False


@schemathesis.hook
def filter_case(context: schemathesis.HookContext, case: schemathesis.Case[Any]) -> bool:
    if case.meta is not None and case.meta.generation.mode.is_negative:
        return True
    # JSON Schema counts 3.0 as an integer; this API (strict JSON types,
    # docs/rest-api.md#input-limits: a wrong type is 400) takes only JSON integers for its integer
    # fields, and it has no other numbers.
    if _has_float(case.body):
        return False
    if case.operation.method.upper() != "POST" or case.operation.path != "/v1/orders":
        return True
    total = _total(case.body)
    return total is None or MIN_ORDER_AMOUNT <= total <= MAX_ORDER_AMOUNT


@schemathesis.hook
def before_call(context: schemathesis.HookContext, case: schemathesis.Case[Any], kwargs: dict[str, Any]) -> None:
    headers = case.headers
    if headers is not None and IDEMPOTENCY_KEY_RE.match(str(headers.get("idempotency-key", ""))):
        headers["idempotency-key"] = uuid.uuid4().hex
    if isinstance(case.body, dict) and isinstance(case.body.get("url"), str):
        case.body["url"] = NOWHERE

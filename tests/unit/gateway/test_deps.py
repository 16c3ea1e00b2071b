from __future__ import annotations

import pytest

from gateway.deps import RESOURCE_ID_RE, _idempotency_key
from gateway.errors import ApiError


@pytest.mark.parametrize("value", ["ord_01JD", "a", "x" * 64])
def test_a_resource_id(value: str) -> None:
    assert RESOURCE_ID_RE.match(value)


@pytest.mark.parametrize("value", ["", "x" * 65, "ord-1", "ord_1\n", "ørd"])
def test_not_a_resource_id(value: str) -> None:
    assert not RESOURCE_ID_RE.match(value)


async def test_an_idempotency_key_of_visible_ascii() -> None:
    assert await _idempotency_key("k-1:~!") == "k-1:~!"
    assert await _idempotency_key(None) is None


@pytest.mark.parametrize("value", ["", "with space", "x" * 256, "tab\t"])
async def test_an_invalid_idempotency_key_is_400_naming_the_header(value: str) -> None:
    with pytest.raises(ApiError) as refused:
        await _idempotency_key(value)
    assert refused.value.status == 400
    assert refused.value.errors == [{"field": "Idempotency-Key", "message": "must be 1-255 visible ASCII characters"}]

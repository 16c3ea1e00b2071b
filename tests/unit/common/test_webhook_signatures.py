"""The signer against Standard Webhooks' own test vector and its Python library's verification."""

from __future__ import annotations

import base64
import time

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from common.webhook_signatures import SECRET_PREFIX, new_secret, secret_key, signature, signature_header, verify

# The vector of the standard's libraries (standard-webhooks/standard-webhooks, libraries/*/tests).
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_standard_test_vector() -> None:
    assert signature(VECTOR_SECRET, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY) == VECTOR_SIGNATURE


def test_a_secret_is_whsec_and_32_random_bytes() -> None:
    secrets = {new_secret() for _ in range(20)}
    assert len(secrets) == 20
    for secret in secrets:
        assert secret.startswith(SECRET_PREFIX)
        assert len(base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)) == 32
        assert secret_key(secret) == base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def _headers(msg_id: str, timestamp: int, value: str) -> dict[str, str]:
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp), "webhook-signature": value}


def test_the_library_verifies_what_we_sign() -> None:
    secret, body, now = new_secret(), b'{"id": "evt_1", "type": "order.updated"}', int(time.time())
    header = signature_header([secret], "evt_1", now, body)
    assert Webhook(secret).verify(body, _headers("evt_1", now, header)) == {"id": "evt_1", "type": "order.updated"}


def test_while_a_rotation_overlaps_either_secret_verifies() -> None:
    new, old, body, now = new_secret(), new_secret(), b"{}", int(time.time())
    header = signature_header([new, old], "evt_2", now, body)
    assert len(header.split(" ")) == 2
    for secret in (new, old):
        Webhook(secret).verify(body, _headers("evt_2", now, header))
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, _headers("evt_2", now, header))


@pytest.mark.parametrize("change", ["body", "id", "timestamp"])
def test_any_change_breaks_the_signature(change: str) -> None:
    secret, body, now = new_secret(), b'{"a": 1}', int(time.time())
    header = signature_header([secret], "evt_3", now, body)
    headers = _headers("evt_3", now, header)
    if change == "body":
        body = b'{"a": 2}'
    elif change == "id":
        headers["webhook-id"] = "evt_4"
    else:
        headers["webhook-timestamp"] = str(now - 1)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body, headers)


def test_our_own_verification_agrees_with_the_library() -> None:
    secret, body, now = new_secret(), b'{"a": 1}', int(time.time())
    headers = _headers("evt_5", now, signature_header([new_secret(), secret], "evt_5", now, body))
    Webhook(secret).verify(body, headers)
    assert verify(secret, headers, body)
    assert not verify(new_secret(), headers, body)
    assert not verify(secret, headers, body + b" ")
    assert not verify(secret, headers, body, now=now + 301)  # too old
    assert not verify(secret, {**headers, "webhook-timestamp": "soon"}, body)

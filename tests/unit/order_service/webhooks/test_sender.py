"""One webhook attempt against real receivers on loopback (order_service/webhooks/sender.py):
what counts as delivered, and what is a failed attempt — a redirect, a huge, slow or garbage
answer, an address that may not be called (then nothing is sent)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from order_service.webhooks.sender import MAX_ANSWER_BYTES, Sender
from tests.harness import free_port
from tests.webhook_receiver import Behaviour, Receiver, garbage

TIMEOUT_S = 1.0
HEADERS = {"content-type": "application/json", "webhook-id": "evt_1"}


@pytest.fixture
async def sender() -> AsyncIterator[Sender]:
    running = Sender(allow_private=True, timeout_s=TIMEOUT_S, connections_per_endpoint=4)
    yield running
    await running.close()


async def test_a_2xx_is_delivered(receiver: Receiver, sender: Sender) -> None:
    outcome = await sender.send("we_1", receiver.url(), HEADERS, b'{"a": 1}')
    assert (outcome.delivered, outcome.status_code, outcome.error) == (True, 204, None)
    (arrival,) = receiver.at("/hook")
    assert arrival.body == b'{"a": 1}'
    assert arrival.headers["webhook-id"] == "evt_1"


@pytest.mark.parametrize(
    ("behaviour", "code", "error"),
    [
        (Behaviour(status=500), 500, "HTTP 500"),
        (Behaviour(status=302, location="http://127.0.0.1:9/elsewhere"), 302, "redirects are not followed"),
        (Behaviour(status=200, body_bytes=MAX_ANSWER_BYTES + 1), 200, "over 64 KiB"),
        (Behaviour(status=200, stall_s=TIMEOUT_S * 5), None, "no complete answer within"),
    ],
    ids=["500", "redirect", "huge body", "slow body"],
)
async def test_a_failed_attempt(
    receiver: Receiver, sender: Sender, behaviour: Behaviour, code: int | None, error: str
) -> None:
    receiver.behaviours["/odd"] = behaviour
    outcome = await sender.send("we_1", receiver.url("/odd"), HEADERS, b"{}")
    assert not outcome.delivered
    assert outcome.status_code == code
    assert outcome.error is not None
    assert error in outcome.error
    assert [a.path for a in receiver.arrivals] == ["/odd"]  # the redirect was not followed


async def test_an_answer_that_is_not_http_is_a_failed_attempt(sender: Sender) -> None:
    async with garbage() as (url, seen):
        outcome = await sender.send("we_1", url, HEADERS, b"{}")
    assert not outcome.delivered
    assert outcome.error == "the answer is not valid HTTP"
    assert len(seen) == 1


async def test_nobody_listening_is_a_failed_attempt(sender: Sender) -> None:
    outcome = await sender.send("we_1", f"http://127.0.0.1:{free_port()}/hook", HEADERS, b"{}")
    assert (outcome.delivered, outcome.error) == (False, "could not connect to the endpoint")


async def test_a_refused_address_is_never_sent_to(receiver: Receiver) -> None:
    strict = Sender(allow_private=False, timeout_s=TIMEOUT_S, connections_per_endpoint=4)
    try:
        for url in (receiver.url(), f"http://localhost:{receiver.port}/hook"):
            outcome = await strict.send("we_1", url, HEADERS, b"{}")
            assert not outcome.delivered
            assert outcome.error is not None
            assert outcome.error.startswith("not sent: the host is or resolves to a loopback address")
            assert "127.0.0.1" not in outcome.error
    finally:
        await strict.close()
    assert receiver.arrivals == []

"""Webhook endpoints over REST (docs/webhooks.md): create (the secret shown once), list, read, delete,
rotate; who may do what; and every refusal is problem+json that changes nothing."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.conftest import client_of
from tests.harness import Stack, bearer
from tests.integration.helpers import assert_problem
from tests.integration.webhooks import Json
from tests.webhook_receiver import Receiver

pytestmark = pytest.mark.usefixtures("webhook_stack")


client = client_of("webhook_stack")


@pytest.fixture
async def created(client: httpx.AsyncClient, receiver: Receiver) -> AsyncIterator[Json]:
    """A new endpoint of the account, as its creation answered (the secret included); deleted after the test."""
    reply = await client.post("/v1/webhook_endpoints", json={"url": receiver.url()})
    assert reply.status_code == 201, reply.text
    yield reply.json()
    await client.delete(f"/v1/webhook_endpoints/{reply.json()['id']}")


def as_key(client: httpx.AsyncClient, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=client.base_url, headers=bearer(key), timeout=10)


async def listed(client: httpx.AsyncClient) -> list[str]:
    reply = await client.get("/v1/webhook_endpoints")
    assert reply.status_code == 200, reply.text
    return [e["id"] for e in reply.json()["webhook_endpoints"]]


async def test_create_shows_the_secret_once(client: httpx.AsyncClient, receiver: Receiver) -> None:
    reply = await client.post(
        "/v1/webhook_endpoints", json={"url": receiver.url(), "enabled_events": ["order.updated"], "description": "d"}
    )
    assert reply.status_code == 201, reply.text
    created = reply.json()
    assert created["id"].startswith("we_")
    assert reply.headers["location"] == f"/v1/webhook_endpoints/{created['id']}"
    assert (created["url"], created["enabled_events"], created["description"]) == (
        receiver.url(),
        ["order.updated"],
        "d",
    )
    assert created["status"] == "enabled"
    assert created["secret"].startswith("whsec_")
    assert len(base64.b64decode(created["secret"].removeprefix("whsec_"), validate=True)) == 32
    read = (await client.get(f"/v1/webhook_endpoints/{created['id']}")).json()
    assert "secret" not in read
    assert read == {k: v for k, v in created.items() if k != "secret"}
    everything = (await client.get("/v1/webhook_endpoints")).json()["webhook_endpoints"]
    assert all("secret" not in e for e in everything)
    assert created["id"] in [e["id"] for e in everything]
    await client.delete(f"/v1/webhook_endpoints/{created['id']}")


async def test_enabled_events_default_to_everything(client: httpx.AsyncClient, created: Json) -> None:
    assert created["enabled_events"] == ["*"]


async def test_delete_answers_the_deleted_endpoint(client: httpx.AsyncClient, created: Json) -> None:
    for _ in range(2):  # again: the same answer
        reply = await client.delete(f"/v1/webhook_endpoints/{created['id']}")
        assert reply.status_code == 200, reply.text
        assert reply.json()["status"] == "deleted"
        assert "secret" not in reply.json()
    assert (await client.get(f"/v1/webhook_endpoints/{created['id']}")).json()["status"] == "deleted"
    assert created["id"] not in await listed(client)
    rotate = await client.post(f"/v1/webhook_endpoints/{created['id']}/rotate_secret")
    assert_problem(rotate, 400, "FAILED_PRECONDITION")


async def test_rotation_gives_a_new_secret(client: httpx.AsyncClient, created: Json) -> None:
    reply = await client.post(f"/v1/webhook_endpoints/{created['id']}/rotate_secret")
    assert reply.status_code == 200, reply.text
    assert reply.json()["secret"].startswith("whsec_")
    assert reply.json()["secret"] != created["secret"]
    assert reply.json()["id"] == created["id"]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/hook", "http:// or https://"),
        ("https://user:secret@example.com/hook", "user name or password"),
        ("https://example.com/" + "a" * 2100, "2048"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://[fe80::1]/hook", "link-local"),
        ("http://224.0.0.1/hook", "multicast"),
        ("http://0.0.0.0/hook", "unspecified"),
        ("https://no-such-host.invalid/hook", "does not resolve"),
    ],
)
async def test_a_refused_url_says_why_and_creates_nothing(client: httpx.AsyncClient, url: str, reason: str) -> None:
    before = await listed(client)
    problem = assert_problem(await client.post("/v1/webhook_endpoints", json={"url": url}), 400)
    assert reason in problem["detail"] + str(problem.get("errors"))
    assert problem["errors"][0]["field"] == "url"
    assert await listed(client) == before


@pytest.mark.parametrize(
    "body",
    [
        {"url": "https://example.com/h", "enabled_events": ["order.created"]},
        {"url": "https://example.com/h", "enabled_events": []},
        {"url": "https://example.com/h", "enabled_events": "order.updated"},
        {"url": "https://example.com/h", "secret": "whsec_mine"},
        {"url": 5},
        {},
    ],
)
async def test_invalid_input_is_400_and_creates_nothing(client: httpx.AsyncClient, body: dict[str, object]) -> None:
    before = await listed(client)
    assert_problem(await client.post("/v1/webhook_endpoints", json=body), 400)
    assert await listed(client) == before


async def test_read_only_keys_may_read_but_not_change(
    client: httpx.AsyncClient, webhook_stack: Stack, receiver: Receiver, created: Json
) -> None:
    path = f"/v1/webhook_endpoints/{created['id']}"
    async with as_key(client, webhook_stack.keys.read_only) as read_only:
        for route in ("/v1/webhook_endpoints", path, f"{path}/deliveries", "/v1/events"):
            assert (await read_only.get(route)).status_code == 200, route
        assert_problem(await read_only.post("/v1/webhook_endpoints", json={"url": receiver.url()}), 403)
        assert_problem(await read_only.post(f"{path}/rotate_secret"), 403)
        assert_problem(await read_only.delete(path), 403)
    assert (await client.get(path)).json()["status"] == "enabled"


async def test_another_accounts_endpoint_is_not_found(
    client: httpx.AsyncClient, webhook_stack: Stack, created: Json
) -> None:
    path = f"/v1/webhook_endpoints/{created['id']}"
    async with as_key(client, webhook_stack.keys.other) as other:
        assert_problem(await other.get(path), 404, "NOT_FOUND")
        assert_problem(await other.get(f"{path}/deliveries"), 404, "NOT_FOUND")
        assert_problem(await other.post(f"{path}/rotate_secret"), 404, "NOT_FOUND")
        assert_problem(await other.delete(path), 404, "NOT_FOUND")
        assert created["id"] not in [
            e["id"] for e in (await other.get("/v1/webhook_endpoints")).json()["webhook_endpoints"]
        ]
    assert (await client.get(path)).json()["status"] == "enabled"


async def test_an_idempotency_key_makes_one_endpoint(client: httpx.AsyncClient, receiver: Receiver) -> None:
    headers = {"Idempotency-Key": f"endpoint-{receiver.port}"}
    first = await client.post("/v1/webhook_endpoints", json={"url": receiver.url()}, headers=headers)
    again = await client.post("/v1/webhook_endpoints", json={"url": receiver.url()}, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()  # the secret too: it is the same answer
    assert again.headers["idempotent-replayed"] == "true"
    other_body = await client.post("/v1/webhook_endpoints", json={"url": receiver.url("/x")}, headers=headers)
    assert_problem(other_body, 422)
    assert (await listed(client)).count(first.json()["id"]) == 1
    await client.delete(f"/v1/webhook_endpoints/{first.json()['id']}")


@pytest.mark.parametrize("query", ["page_size=0", "page_size=101", "page_token=bogus"])
async def test_the_delivery_log_refuses_bad_paging(client: httpx.AsyncClient, created: Json, query: str) -> None:
    assert_problem(await client.get(f"/v1/webhook_endpoints/{created['id']}/deliveries?{query}"), 400)


async def test_unknown_endpoint_is_404(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/v1/webhook_endpoints/we_nothing"), 404, "NOT_FOUND")
    assert_problem(await client.delete("/v1/webhook_endpoints/we_nothing"), 404, "NOT_FOUND")

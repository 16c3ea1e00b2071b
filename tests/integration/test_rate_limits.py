"""Rate limits (docs/security.md#rate-limits) on stacks of their own, with small limits: per key (a
burst of twice the rate, then 429 with Retry-After), each key for itself; failed authentications per
client address; and the gateway's refusal to start without a usable key list."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.bad_settings import GATEWAY, first_cases
from tests.harness import ROOT, Stack, bearer, new_key
from tests.integration.helpers import assert_problem, create_order


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {"GATEWAY_RATE_LIMIT": "5/minute", "GATEWAY_AUTH_FAILURE_LIMIT": "3/minute"}
    with Stack(tmp_path_factory.mktemp("limited"), env=env) as stack:
        yield stack


async def test_each_key_gets_its_rate_and_a_burst_of_twice_that(limited: Stack) -> None:
    async with (
        limited.client() as mine,
        httpx.AsyncClient(base_url=limited.url, headers=bearer(limited.keys.other), timeout=10) as theirs,
    ):
        answers = [(await mine.get("/v1/orders", params={"page_size": 1})).status_code for _ in range(12)]
        assert answers == [200] * 10 + [429] * 2  # 5/minute: a burst of 10
        refused = await mine.get("/v1/orders")
        problem = assert_problem(refused, 429, "RESOURCE_EXHAUSTED")
        assert "API key" in problem["detail"]
        assert 1 <= int(refused.headers["retry-after"]) <= 12  # one request's worth: 12 s at 5/minute
        # Another key is counted on its own, and needs no key's leftovers.
        assert (await theirs.get("/v1/orders")).status_code == 200
        # What needs no key is not limited.
        health = [(await mine.get("/healthz")).status_code for _ in range(20)]
        assert health == [200] * 20


async def test_failed_authentications_are_limited_per_address_but_a_valid_key_still_works(limited: Stack) -> None:
    async with httpx.AsyncClient(base_url=limited.url, timeout=10) as anonymous:
        wrong = bearer(new_key())
        answers = [(await anonymous.get("/v1/orders", headers=wrong)).status_code for _ in range(8)]
        assert answers == [401] * 6 + [429] * 2  # 3/minute: a burst of 6 failures
        refused = await anonymous.get("/v1/orders", headers=bearer(new_key()))
        assert_problem(refused, 429, "RESOURCE_EXHAUSTED")
        assert int(refused.headers["retry-after"]) >= 1
        # A client secret from this address is refused too, right or wrong: it could be a guess.
        assert (await anonymous.get("/v1/orders/ord_1", params={"client_secret": "x" * 40})).status_code == 429
        # A missing key is no guess: still 401.
        assert (await anonymous.get("/v1/orders")).status_code == 401
        # The shop's own servers behind the same address keep working with their valid key.
        ok = await anonymous.get("/v1/orders", headers=bearer(limited.keys.other), params={"page_size": 1})
        assert ok.status_code == 200


async def test_wrong_client_secrets_count_as_failed_authentications(tmp_path: Path) -> None:
    stack = Stack(tmp_path / "stack", env={"GATEWAY_AUTH_FAILURE_LIMIT": "2/minute"})
    stack.start()
    try:
        async with (
            stack.client() as client,
            httpx.AsyncClient(base_url=stack.url, timeout=10) as browser,
        ):
            order = await create_order(client, "pm_wallet_qr")
            right = {"client_secret": order["client_secret"]}
            assert (await browser.get(f"/v1/orders/{order['id']}", params=right)).status_code == 200
            guess = {"client_secret": order["client_secret"][:-6] + "guess0"}
            answers = [(await browser.get(f"/v1/orders/{order['id']}", params=guess)).status_code for _ in range(5)]
            assert answers == [404] * 4 + [429]
            # Now even the right secret waits: a guess that succeeded would look the same.
            assert (await browser.get(f"/v1/orders/{order['id']}", params=right)).status_code == 429
    finally:
        stack.stop()


def _start_gateway(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "GATEWAY_PORT": "1", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("keys", "says"),
    [
        (None, "no API key is configured"),
        ("", "no API key is configured"),
        ("acct_1", "entry 1 is not `<account_id>:<key>`"),
        ("acct_1:sk_test_tooshort", "entry 1: the key must start with sk_ or rk_"),
        ("acct_1:pk_test_0123456789abcdefghijklmn", "entry 1: the key must start with sk_ or rk_"),
        ("acct 1:sk_test_0123456789abcdefghijklmn", "entry 1: the account id"),
        ("a:sk_test_0123456789abcdefghijklmn,b:sk_test_0123456789abcdefghijklmn", "entry 2: the same key"),
    ],
)
def test_the_gateway_refuses_to_start_without_a_usable_key_list(keys: str | None, says: str) -> None:
    done = _start_gateway({} if keys is None else {"GATEWAY_API_KEYS": keys})
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("configuration error: GATEWAY_API_KEYS: ")
    assert says in lines[0]
    for secret in (keys or "").replace(",", ":").split(":"):
        if secret.startswith(("sk_", "rk_", "pk_")):
            assert secret not in done.stderr  # the line names the entry, never the key


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    first_cases(GATEWAY, "GATEWAY_CORS_ORIGINS", "GATEWAY_RATE_LIMIT_STORAGE", "GATEWAY_PUBLIC_URL"),
)
def test_the_gateway_refuses_to_start_with_bad_origins_or_storage(variable: str, value: str, says: str) -> None:
    done = _start_gateway({"GATEWAY_API_KEYS": f"acct_1:{new_key()}", variable: value})
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"configuration error: {variable}: ")
    assert says in lines[0]

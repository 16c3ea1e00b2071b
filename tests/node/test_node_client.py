"""The wire contract is not Python-only: a Node.js client (@grpc/grpc-js, with @grpc/proto-loader
reading protos/ at run time) talks to the real order and payment services started by the
harness, and what it saw is checked here — over plaintext, and over mutual TLS with certificates
made here (docs/security.md#mtls-between-the-services). Needs `node` and `npm ci` run in
tests/node."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from common.devcerts import write_all
from tests.conftest import require_executable, require_tool
from tests.harness import Stack

pytestmark = pytest.mark.node

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def tls_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, dict[str, str]]]:
    """The services with mTLS on (certificates made here; one identity shared, as in `make run`)."""
    certs = tmp_path_factory.mktemp("certs")
    write_all(certs)
    tls = {
        "GRPC_TLS_CA": f"{certs}/ca.pem",
        "GRPC_TLS_CERT": f"{certs}/shop.pem",
        "GRPC_TLS_KEY": f"{certs}/shop-key.pem",
    }
    running = Stack(tmp_path_factory.mktemp("tls-stack"), env=tls).start()
    yield running, tls
    running.stop()


@pytest.fixture(scope="module", params=["plaintext", "mtls"])
def report(request: pytest.FixtureRequest) -> dict[str, Any]:
    node = require_executable("node")
    require_tool(
        (HERE / "node_modules" / "@grpc" / "grpc-js").is_dir(), "tests/node has no node_modules: run `npm ci` there"
    )
    if request.param == "plaintext":
        stack: Stack = request.getfixturevalue("stack")
        env, host = dict(os.environ), "127.0.0.1"
    else:
        stack, tls = request.getfixturevalue("tls_stack")
        env, host = {**os.environ, **tls}, "localhost"  # the name the certificates carry
    targets = [f"{host}:{stack.order_port}", f"{host}:{stack.payment_port}"]
    done = subprocess.run(
        [node, str(HERE / "client.mjs"), *targets],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert done.returncode == 0, f"the Node client failed:\n{done.stderr}\n{stack.logs()}"
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_create_order(report: dict[str, Any]) -> None:
    order = report["created"]
    assert order["id"].startswith("ord_")
    assert order["status"] == "ORDER_STATUS_PAID"
    assert order["amount"] == 2598
    assert order["items"] == [{"sku": "BOOK-42", "quantity": 2, "unit_price": 1299}]
    assert order["payment"]["status"] == "PAYMENT_STATUS_SUCCEEDED"
    assert order["created_at"]["seconds"] > 0


def test_get_order_returns_what_create_returned(report: dict[str, Any]) -> None:
    assert report["fetched"] == report["created"]


def test_get_payment_from_the_payment_service(report: dict[str, Any]) -> None:
    payment, order = report["payment"], report["created"]
    assert payment["id"] == order["payment"]["id"]
    assert payment["order_id"] == order["id"]
    assert payment["status"] == "PAYMENT_STATUS_SUCCEEDED"
    assert payment["amount"] == order["amount"]
    assert payment["currency"] == "EUR"


def test_watch_order_streams_to_the_final_status(report: dict[str, Any]) -> None:
    assert report["declined"]["status"] == "ORDER_STATUS_PAYMENT_FAILED"
    watched = report["watched"]
    assert watched["status"]["name"] == "OK"
    # The client asks for after_version 0 (an explicit proto3 `optional`): the whole history.
    assert [m["version"] for m in watched["messages"]] == list(range(1, report["declined"]["version"] + 1))
    assert watched["messages"][-1]["order"]["status"] == "ORDER_STATUS_PAYMENT_FAILED"


def test_unknown_order_is_not_found(report: dict[str, Any]) -> None:
    assert report["not_found"]["name"] == "NOT_FOUND"


def test_unknown_payment_method_is_invalid_argument_with_details(report: dict[str, Any]) -> None:
    assert report["invalid"]["name"] == "INVALID_ARGUMENT"
    # google.rpc.Status with BadRequest field violations travels in this trailer.
    assert "grpc-status-details-bin" in report["invalid"]["trailers"]

from __future__ import annotations

import grpc
import orjson
import pytest

from common.errors import STATUS_DETAILS_KEY, FailedPrecondition, InvalidArgument
from gateway.errors import GRPC_TO_HTTP, from_rpc_error


def rpc_error(code: grpc.StatusCode, details: str, status: bytes | None = None) -> grpc.aio.AioRpcError:
    trailing = grpc.aio.Metadata((STATUS_DETAILS_KEY, status)) if status else grpc.aio.Metadata()
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), trailing, details, debug_error_string=None)


def test_every_code_has_a_status() -> None:
    assert set(GRPC_TO_HTTP) == set(grpc.StatusCode)
    assert GRPC_TO_HTTP[grpc.StatusCode.FAILED_PRECONDITION] == 400
    assert GRPC_TO_HTTP[grpc.StatusCode.ABORTED] == 409
    assert GRPC_TO_HTTP[grpc.StatusCode.CANCELLED] == 499
    assert GRPC_TO_HTTP[grpc.StatusCode.UNAVAILABLE] == 503
    assert GRPC_TO_HTTP[grpc.StatusCode.DEADLINE_EXCEEDED] == 504


def test_field_violations_become_errors() -> None:
    error = InvalidArgument("invalid order", violations=[("items.0.quantity", "must be ≥ 1")])
    reply = from_rpc_error(rpc_error(error.code, error.message, error.to_status().SerializeToString()))
    body = orjson.loads(reply.body)
    assert reply.status_code == 400
    assert reply.media_type == "application/problem+json"
    assert body["code"] == "INVALID_ARGUMENT"
    assert body["errors"] == [{"field": "items.0.quantity", "message": "must be ≥ 1"}]


def test_reused_idempotency_key_is_422() -> None:
    error = FailedPrecondition("reused", reason="IDEMPOTENCY_KEY_REUSED")
    reply = from_rpc_error(rpc_error(error.code, error.message, error.to_status().SerializeToString()))
    assert reply.status_code == 422


@pytest.mark.parametrize(
    ("code", "status"), [(grpc.StatusCode.UNAVAILABLE, 503), (grpc.StatusCode.DEADLINE_EXCEEDED, 504)]
)
def test_library_errors_hide_internal_addresses(code: grpc.StatusCode, status: int) -> None:
    reply = from_rpc_error(rpc_error(code, "failed to connect to all addresses; last error: ipv4:10.1.2.3:50052"))
    body = orjson.loads(reply.body)
    assert reply.status_code == status
    assert "10.1.2.3" not in body["detail"]
    assert body["code"] == code.name


def test_a_call_the_server_cancelled_at_shutdown_is_unavailable() -> None:
    """grpc/grpc#41785: a server that shuts down cancels the calls it had not started yet. The
    client did not cancel anything: it is told to retry, as for any service that went away."""
    reply = from_rpc_error(rpc_error(grpc.StatusCode.CANCELLED, "CANCELLED"))
    body = orjson.loads(reply.body)
    assert reply.status_code == 503
    assert body["code"] == "UNAVAILABLE"
    assert body["detail"] == "the service is unavailable; try again shortly"

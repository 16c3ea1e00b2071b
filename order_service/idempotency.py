"""REST idempotency keys (CONTRACT §3), kept in the database so that every replica sees them.

As at Stripe (and brandur's "Implementing Stripe-like Idempotency Keys in Postgres"):

- a request with a key first claims it, in one transaction: a new row (`INSERT … ON CONFLICT DO
  NOTHING`), or an existing one whose lease has run out — its replica died, or it gave up without
  an answer (503, 504) — which this request takes over from its recovery point (`order_id`);
- a key whose lease is running belongs to a request in progress: ABORTED (409, Retry-After);
- a key used with another request: FAILED_PRECONDITION, reason IDEMPOTENCY_KEY_REUSED (422);
- once a request has started, its first answer is stored — a success in the transaction of the
  change it answers, an error (400, 404 …) on its own — and every repeat gets it again.

Nothing lives in process memory, so two replicas given one key at once make one order.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import TypeVar

from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]

from common.db import Sql, Tx
from common.errors import Aborted, FailedPrecondition, ServiceError, StoredError, pack_detail
from common.logs import request_id_var
from common.timestamps import now_us

M = TypeVar("M", bound=Message)

TTL_US = 24 * 3600 * 1_000_000
OK = 0

_CLAIM = Sql(
    "INSERT INTO idempotency_keys (scope, key, fingerprint, locked_until_us, created_us)"
    " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (scope, key) DO NOTHING"
)
_GET = Sql(
    "SELECT fingerprint, order_id, locked_until_us, response_code, response, created_us"
    " FROM idempotency_keys WHERE scope = $1 AND key = $2 FOR UPDATE"
)
_RENEW = Sql(
    "UPDATE idempotency_keys SET fingerprint = $3, order_id = NULL, locked_until_us = $4, response_code = NULL,"
    " response = NULL, created_us = $5 WHERE scope = $1 AND key = $2"
)
_TAKE_OVER = Sql("UPDATE idempotency_keys SET locked_until_us = $3 WHERE scope = $1 AND key = $2")
_SET_ORDER = Sql("UPDATE idempotency_keys SET order_id = $3 WHERE scope = $1 AND key = $2")
_ANSWER = Sql(
    "UPDATE idempotency_keys SET response_code = $3, response = $4, locked_until_us = NULL"
    " WHERE scope = $1 AND key = $2"
)
_RELEASE = Sql("UPDATE idempotency_keys SET locked_until_us = NULL WHERE scope = $1 AND key = $2")
_PURGE = Sql("DELETE FROM idempotency_keys WHERE created_us <= $1")


def fingerprint(scope: str, request: Message) -> str:
    return hashlib.sha256(scope.encode() + b"\0" + request.SerializeToString(deterministic=True)).hexdigest()


@dataclass(frozen=True, slots=True)
class Claim:
    """This request holds the key. `order_id`: the order an earlier attempt made (the recovery
    point), or None."""

    scope: str
    key: str
    order_id: str | None


@dataclass(frozen=True, slots=True)
class Stored:
    """The answer stored for the key: an OK message, or an error as a google.rpc.Status."""

    code: int
    body: bytes

    def replay(self, response_type: type[M]) -> M:
        if self.code == OK:
            return response_type.FromString(self.body)
        raise StoredError(status_pb2.Status.FromString(self.body))


async def claim(tx: Tx, scope: str, key: str, digest: str, lease_us: int) -> Claim | Stored:
    now = now_us()
    if await tx.execute(_CLAIM, scope, key, digest, now + lease_us, now) == 1:
        return Claim(scope, key, None)
    row = await tx.fetchrow(_GET, scope, key)
    assert row is not None
    if row["created_us"] <= now - TTL_US:
        # Older than 24 h: forgotten, so this is a new request (the purge may not have run yet).
        await tx.execute(_RENEW, scope, key, digest, now + lease_us, now)
        return Claim(scope, key, None)
    if row["fingerprint"] != digest:
        raise FailedPrecondition(
            "this idempotency key was used with a different request", reason="IDEMPOTENCY_KEY_REUSED"
        )
    if row["response_code"] is not None:
        return Stored(row["response_code"], bytes(row["response"]))
    locked_until = row["locked_until_us"]
    if locked_until is not None and locked_until > now:
        raise Aborted(
            "a request with this idempotency key is in progress",
            reason="IDEMPOTENCY_KEY_IN_USE",
            retry_after_s=max(1, math.ceil((locked_until - now) / 1_000_000)),
        )
    await tx.execute(_TAKE_OVER, scope, key, now + lease_us)
    return Claim(scope, key, row["order_id"])


async def set_order(tx: Tx, held: Claim, order_id: str) -> None:
    """Record the recovery point: the order exists, a retry finishes it instead of making another."""
    await tx.execute(_SET_ORDER, held.scope, held.key, order_id)


async def answer(tx: Tx, held: Claim, response: Message) -> None:
    """Store the success to replay, in the transaction of the change it answers."""
    await tx.execute(_ANSWER, held.scope, held.key, OK, response.SerializeToString())


async def answer_error(tx: Tx, held: Claim, error: ServiceError) -> None:
    """Store an error to replay. It keeps the first request's id, so that a replay is the same
    problem document, request_id included."""
    status = error.to_status()
    status.details.append(pack_detail(error_details_pb2.RequestInfo(request_id=request_id_var.get() or "")))
    await tx.execute(_ANSWER, held.scope, held.key, status.code, status.SerializeToString())


async def release(tx: Tx, held: Claim) -> None:
    """Give the key up without an answer (the outcome is not known yet): a retry may take it at
    once and finish from the recovery point."""
    await tx.execute(_RELEASE, held.scope, held.key)


async def purge(tx: Tx) -> int:
    return await tx.execute(_PURGE, now_us() - TTL_US)

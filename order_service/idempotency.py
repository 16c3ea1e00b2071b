"""REST idempotency keys (docs/rest-api.md#idempotency), kept in the database so that every replica
sees them.

As at Stripe (and brandur's "Implementing Stripe-like Idempotency Keys in Postgres"):

- a request with a key first claims it, in one transaction: a new row (`INSERT … ON CONFLICT DO
  NOTHING`), or an existing one whose lease has run out — its replica died, or it gave up without
  an answer (503, 504) — which this request takes over from its recovery point (`order_id`);
- a key whose lease is running belongs to a request in progress: ABORTED (409, Retry-After);
- a key used with another request: FAILED_PRECONDITION, reason IDEMPOTENCY_KEY_REUSED (422);
- once a request has started, its first answer is stored — a success in the transaction of the
  change it answers, an error (400, 404 …) on its own — and every repeat gets it again.

Nothing lives in process memory, so two replicas given one key at once make one order.

`Idempotency.run` is the one wrapper: the servicer puts it around a flow. While the flow runs,
the claim is the request's (`held()`), and the store writes it in the flow's own transactions:
the recovery point with the pending order, the answer with the change it answers.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TypeVar

from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]

from common.caller import Call
from common.db import Database, Sql, Tx, writes, writes_one
from common.errors import (
    Aborted,
    DeadlineExceeded,
    FailedPrecondition,
    ServiceError,
    StoredError,
    Unavailable,
    pack_detail,
)
from common.logs import request_id_var
from common.timestamps import now_us
from shop.order.v1 import order_pb2
from shop.payment.v1 import payment_pb2

log = logging.getLogger(__name__)

M = TypeVar("M", bound=Message)
R = TypeVar("R", bound=Message)

TTL_US = 24 * 3600 * 1_000_000
OK = 0
# A claim is leased for the call's deadline and this much more.
LEASE_MARGIN_US = 1_000_000
# The payment service may have acted: a retry must be able to take the key over at once.
_UNKNOWN_OUTCOME = (Unavailable, DeadlineExceeded)

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


def fingerprint(scope: str, request: Message) -> str:
    return hashlib.sha256(scope.encode() + b"\0" + request.SerializeToString(deterministic=True)).hexdigest()


@dataclass(frozen=True, slots=True)
class Claim:
    """This request holds the key. `order_id`: the order an earlier attempt made (the recovery
    point), or None. `answer_type`: what its method answers with."""

    scope: str
    key: str
    order_id: str | None
    answer_type: type[Message] = order_pb2.Order

    def answer_of(self, order: order_pb2.Order, payment: payment_pb2.Payment | None) -> Message:
        """The message to store as the answer: the order, or (ConfirmPayment) its payment."""
        return payment if self.answer_type is payment_pb2.Payment and payment is not None else order


@dataclass(frozen=True, slots=True)
class Stored:
    """The answer stored for the key: an OK message, or an error as a google.rpc.Status."""

    code: int
    body: bytes

    def replay(self, response_type: type[M]) -> M:
        if self.code == OK:
            return response_type.FromString(self.body)
        raise StoredError(status_pb2.Status.FromString(self.body))


async def set_order(tx: Tx, held: Claim, order_id: str) -> None:
    """Record the recovery point: the order exists, a retry finishes it instead of making another."""
    await tx.execute(_SET_ORDER, held.scope, held.key, order_id)


async def answer(tx: Tx, held: Claim, order: order_pb2.Order, payment: payment_pb2.Payment | None) -> None:
    """Store the success to replay, in the transaction of the change it answers."""
    await answer_with(tx, held, held.answer_of(order, payment))


async def answer_with(tx: Tx, held: Claim, response: Message) -> None:
    """Store `response` as the success to replay, in the transaction of the change it answers."""
    await tx.execute(_ANSWER, held.scope, held.key, OK, response.SerializeToString())


async def claim(
    tx: Tx, scope: str, key: str, digest: str, lease_us: int, answer_type: type[Message] = order_pb2.Order
) -> Claim | Stored:
    """Take the key for a request (its `digest`) for `lease_us`, in the caller's transaction: the
    claim to answer under, or the answer stored for it."""
    now = now_us()
    if await tx.execute(_CLAIM, scope, key, digest, now + lease_us, now) == 1:
        return Claim(scope, key, None, answer_type)
    row = await tx.fetchrow(_GET, scope, key)
    assert row is not None
    if row["created_us"] <= now - TTL_US:
        # Older than 24 h: forgotten, so this is a new request (the purge may not have run yet).
        await tx.execute(_RENEW, scope, key, digest, now + lease_us, now)
        return Claim(scope, key, None, answer_type)
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
    return Claim(scope, key, row["order_id"], answer_type)



_held: ContextVar[Claim | None] = ContextVar("idempotency_claim", default=None)


def held() -> Claim | None:
    """The key the current request holds while its flow runs (None: it sent none)."""
    return _held.get()


Flow = Callable[[R, Call], Awaitable[M]]
Resume = Callable[[str, Call], Awaitable[M]]


class Idempotency:
    """Runs a flow once per idempotency key; see the module docstring."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def run(
        self,
        method: str,
        call: Call,
        request: R,
        answer_type: type[M],
        flow: Flow[R, M],
        resume: Resume[M] | None = None,
    ) -> tuple[M, bool]:
        """`flow(request, call)` once per key; returns the answer and whether it was replayed.
        A claim with a recovery point (an order an earlier attempt stored) runs `resume(order_id,
        call)` instead. `method` names what the key is for ("CancelOrder:<id>"); keys are the
        caller's own. Invalid input was refused before this: it is never stored."""
        if call.idempotency_key is None:
            return await flow(request, call), False
        scope = call.caller.idempotency_prefix() + method
        lease_us = round(call.timeout * 1_000_000) + LEASE_MARGIN_US
        outcome = await self._claim(scope, call.idempotency_key, fingerprint(scope, request), lease_us, answer_type)
        if isinstance(outcome, Stored):
            return outcome.replay(answer_type), True
        token = _held.set(outcome)
        try:
            if outcome.order_id and resume is not None:
                return await resume(outcome.order_id, call), False
            return await flow(request, call), False
        except _UNKNOWN_OUTCOME:
            await self._settle(outcome, None)
            raise
        except ServiceError as error:
            await self._settle(outcome, error)
            raise
        except (Exception, asyncio.CancelledError):
            # A bug, or the caller went away: nothing to replay; a retry takes over at once.
            await self._settle(outcome, None)
            raise
        finally:
            _held.reset(token)

    async def _claim(
        self, scope: str, key: str, digest: str, lease_us: int, answer_type: type[Message]
    ) -> Claim | Stored:
        # A new key, the common case, is one statement; a key seen before is read and locked.
        if await self._claim_new(scope, key, digest, lease_us):
            return Claim(scope, key, None, answer_type)
        return await self._claim_seen(scope, key, digest, lease_us, answer_type)

    @writes_one
    async def _claim_new(self, tx: Tx, scope: str, key: str, digest: str, lease_us: int) -> bool:
        now = now_us()
        return await tx.execute(_CLAIM, scope, key, digest, now + lease_us, now) == 1

    @writes
    async def _claim_seen(
        self, tx: Tx, scope: str, key: str, digest: str, lease_us: int, answer_type: type[Message]
    ) -> Claim | Stored:
        return await claim(tx, scope, key, digest, lease_us, answer_type)

    async def _settle(self, held: Claim, error: ServiceError | None) -> None:
        """Store the error to replay; or (None: the outcome is not known yet) give the key up
        without an answer, so that a retry may take it at once and finish from the recovery point."""
        try:
            if error is None:
                await self._release(held)
            else:
                await self._answer_error(held, error)
        except ServiceError as exc:  # the lease runs out by itself
            log.warning("could not settle an idempotency key", extra={"error": exc.message})

    @writes
    async def _answer_error(self, tx: Tx, held: Claim, error: ServiceError) -> None:
        """Keeps the first request's id, so that a replay is the same problem document, request_id
        included."""
        status = error.to_status()
        status.details.append(pack_detail(error_details_pb2.RequestInfo(request_id=request_id_var.get() or "")))
        await tx.execute(_ANSWER, held.scope, held.key, status.code, status.SerializeToString())

    @writes
    async def _release(self, tx: Tx, held: Claim) -> None:
        await tx.execute(_RELEASE, held.scope, held.key)

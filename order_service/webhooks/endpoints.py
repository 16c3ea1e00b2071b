"""Webhook endpoints: an account's URLs that its events are POSTed to (`webhook_endpoints`).

Creating and deleting an endpoint take the account's event-head lock (events.lock_head), the
one every event of the account takes as it is numbered: an endpoint gets the events numbered
after its creation, and none numbered after its deletion — except, on PostgreSQL, an event whose
single statement (order_service/single_statements.py) took its snapshot before the creation
committed and then waited for the lock: it does not see the new endpoint. (A deleted endpoint's
stray delivery is not sent: a delivery reads its endpoint as it is at the attempt.)

The signing secret is stored as it is (it must be, to sign) and leaves the service only in the
answers of create and rotate; it is never logged and never part of an error.
"""

from __future__ import annotations

from collections.abc import Sequence

from google.protobuf.message import Message

from common import webhook_signatures as signing
from common.db import Database, Row, Sql, Tx
from common.errors import FailedPrecondition, InvalidArgument, NotFound
from common.ids import new_id
from common.timestamps import now_us, timestamp_us
from order_service import events, idempotency
from order_service.idempotency import Stored
from order_service.webhooks import deliveries, urls
from shop.order.v1 import events_pb2 as pb

ENABLED, DELETED = "enabled", "deleted"
ALL_EVENTS = "*"
# Enough for the largest fan-out we measure (100 endpoints) with room; each is a delivery per event.
MAX_ENDPOINTS = 200
MAX_DESCRIPTION = 1000
MAX_ENABLED_EVENTS = 20
# A create or a rotation is one transaction with its idempotency key's claim and answer: a lease
# only has to outlast that transaction.
_KEY_LEASE_US = 30_000_000

_COLUMNS = "id, account_id, url, description, enabled_events, status, created_us"
INSERT = Sql(
    "INSERT INTO webhook_endpoints (id, account_id, url, description, enabled_events, status, secret,"
    " created_us, updated_us) VALUES ($1, $2, $3, $4, $5, 'enabled', $6, $7, $7)"
)
GET = Sql(f"SELECT {_COLUMNS} FROM webhook_endpoints WHERE id = $1 AND account_id = $2")
GET_FOR_UPDATE = Sql(f"SELECT {_COLUMNS}, secret FROM webhook_endpoints WHERE id = $1 AND account_id = $2 FOR UPDATE")
LIST = Sql(f"SELECT {_COLUMNS} FROM webhook_endpoints WHERE account_id = $1 AND status = 'enabled' ORDER BY id")
COUNT = Sql("SELECT count(*) FROM webhook_endpoints WHERE account_id = $1 AND status = 'enabled'")
DELETE = Sql("UPDATE webhook_endpoints SET status = 'deleted', updated_us = $2 WHERE id = $1")
ROTATE = Sql(
    "UPDATE webhook_endpoints SET secret = $2, old_secret = $3, old_secret_until_us = $4, updated_us = $5 WHERE id = $1"
)


def enabled_events(requested: Sequence[str]) -> str:
    """The stored form (space-separated types, or `*`) of a request's `enabled_events`."""
    if len(requested) > MAX_ENABLED_EVENTS:
        raise InvalidArgument("too many event types", violations=[("enabled_events", f"at most {MAX_ENABLED_EVENTS}")])
    known = ", ".join(sorted(events.EVENT_TYPES | {ALL_EVENTS}))
    for position, name in enumerate(requested):
        if name != ALL_EVENTS and name not in events.EVENT_TYPES:
            raise InvalidArgument(
                "unknown event type", violations=[(f"enabled_events.{position}", f"is not one of: {known}")]
            )
    if not requested or ALL_EVENTS in requested:
        return ALL_EVENTS
    return " ".join(sorted(set(requested)))


def to_message(row: Row, secret: str = "") -> pb.WebhookEndpoint:
    status = pb.WEBHOOK_ENDPOINT_STATUS_ENABLED if row["status"] == ENABLED else pb.WEBHOOK_ENDPOINT_STATUS_DELETED
    return pb.WebhookEndpoint(
        id=row["id"],
        url=row["url"],
        enabled_events=row["enabled_events"].split(" "),
        description=row["description"],
        status=status,
        created_at=timestamp_us(row["created_us"]),
        secret=secret,
    )


class Endpoints:
    def __init__(self, db: Database, allow_private: bool, secret_overlap_s: float) -> None:
        self.db = db
        self.allow_private = allow_private
        self.overlap_us = round(secret_overlap_s * 1_000_000)

    async def create(
        self, account_id: str, request: pb.CreateWebhookEndpointRequest, key: str | None = None
    ) -> tuple[pb.WebhookEndpoint, bool]:
        """The new endpoint, with its secret; and whether it is the replay of an earlier answer to
        the idempotency key `key`. Invalid input is refused before the key is looked at."""
        if len(request.description) > MAX_DESCRIPTION:
            raise InvalidArgument(
                "description too long", violations=[("description", f"at most {MAX_DESCRIPTION} characters")]
            )
        stored_events = enabled_events(request.enabled_events)
        try:
            await urls.check(request.url, self.allow_private)
        except urls.UrlRefused as refused:
            reason = refused.reason
            raise InvalidArgument(f"the URL is refused: {reason}", violations=[("url", reason)]) from None
        endpoint_id, secret, now = new_id("we"), signing.new_secret(), now_us()

        async def insert(tx: Tx) -> tuple[pb.WebhookEndpoint, bool]:
            scope = f"{account_id}/CreateWebhookEndpoint"
            held = await _claim_key(tx, scope, key, request)
            if isinstance(held, Stored):
                return held.replay(pb.WebhookEndpoint), True
            await events.lock_head(tx, account_id)
            if await tx.fetchval(COUNT, account_id) >= MAX_ENDPOINTS:
                raise FailedPrecondition(f"an account may have at most {MAX_ENDPOINTS} webhook endpoints")
            args = (endpoint_id, account_id, request.url, request.description, stored_events, secret, now)
            await tx.execute(INSERT, *args)
            row = await tx.fetchrow(GET, endpoint_id, account_id)
            assert row is not None
            created = to_message(row, secret)
            if held is not None:
                await idempotency.answer_with(tx, held, created)
            return created, False

        return await self.db.write(insert)

    async def get(self, account_id: str, endpoint_id: str) -> pb.WebhookEndpoint:
        row = await self.db.read(lambda tx: tx.fetchrow(GET, endpoint_id, account_id))
        if row is None:
            raise NotFound(f"webhook endpoint {endpoint_id} not found")
        return to_message(row)

    async def list(self, account_id: str) -> list[pb.WebhookEndpoint]:
        rows = await self.db.read(lambda tx: tx.fetch(LIST, account_id))
        return [to_message(row) for row in rows]

    async def delete(self, account_id: str, endpoint_id: str) -> pb.WebhookEndpoint:
        async def delete(tx: Tx) -> Row:
            await events.lock_head(tx, account_id)
            row = await tx.fetchrow(GET_FOR_UPDATE, endpoint_id, account_id)
            if row is None:
                raise NotFound(f"webhook endpoint {endpoint_id} not found")
            if row["status"] == ENABLED:
                await tx.execute(DELETE, endpoint_id, now_us())
                await deliveries.fail_pending(tx, endpoint_id)
            found = await tx.fetchrow(GET, endpoint_id, account_id)
            assert found is not None
            return found

        return to_message(await self.db.write(delete))

    async def rotate(
        self, account_id: str, request: pb.RotateWebhookSecretRequest, key: str | None = None
    ) -> tuple[pb.WebhookEndpoint, bool]:
        """The endpoint with its new secret; and whether it is a replay (see `create`). A refusal
        (not found, deleted) is not stored under the key: nothing was done."""
        endpoint_id, secret, now = request.endpoint_id, signing.new_secret(), now_us()

        async def rotate(tx: Tx) -> tuple[pb.WebhookEndpoint, bool]:
            held = await _claim_key(tx, f"{account_id}/RotateWebhookSecret:{endpoint_id}", key, request)
            if isinstance(held, Stored):
                return held.replay(pb.WebhookEndpoint), True
            row = await tx.fetchrow(GET_FOR_UPDATE, endpoint_id, account_id)
            if row is None:
                raise NotFound(f"webhook endpoint {endpoint_id} not found")
            if row["status"] != ENABLED:
                raise FailedPrecondition(f"webhook endpoint {endpoint_id} is deleted")
            await tx.execute(ROTATE, endpoint_id, secret, row["secret"], now + self.overlap_us, now)
            rotated = to_message(row, secret)
            if held is not None:
                await idempotency.answer_with(tx, held, rotated)
            return rotated, False

        return await self.db.write(rotate)

    async def exists(self, account_id: str, endpoint_id: str) -> None:
        """NOT_FOUND unless the endpoint is the account's."""
        await self.get(account_id, endpoint_id)


def signing_secrets(row: Row, at_us: int) -> list[str]:
    """The secrets that sign a delivery now: the current one, and the old one while it overlaps."""
    found = [row["secret"]]
    if row["old_secret"] and (row["old_secret_until_us"] or 0) > at_us:
        found.append(row["old_secret"])
    return found


async def _claim_key(tx: Tx, scope: str, key: str | None, request: Message) -> idempotency.Claim | Stored | None:
    """The idempotency key's claim (REST POSTs' Idempotency-Key), inside the change's own transaction:
    a stored answer to replay, the claim to answer under, or None without a key. (A key in use
    by a request still running waits for that transaction, then finds its answer.)"""
    if key is None:
        return None
    digest = idempotency.fingerprint(scope, request)
    return await idempotency.claim(tx, scope, key, digest, _KEY_LEASE_US, pb.WebhookEndpoint)

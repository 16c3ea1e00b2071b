"""EventService: the events feed over gRPC (docs/webhooks.md) — a page of the account's events after a
cursor, or a stream that follows them. The feed itself is order_service/events.py."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import grpc

from common.caller import caller_scope
from common.errors import InvalidArgument, PermissionDenied, Unavailable
from common.input_limits import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from order_service.changes import LocalChanges
from order_service.events import NEWS, Feed, decode_cursor, encode_cursor
from shop.order.v1 import events_pb2 as pb
from shop.order.v1 import events_pb2_grpc

Context = grpc.aio.ServicerContext[Any, Any]

# The initial metadata of WatchEvents: where the stream starts (for a caller that resumes it).
CURSOR_KEY = "events-cursor"
# A stream also looks this often for events that other replicas committed (this replica's own
# commits wake it at once), and reads this many at a time.
POLL_S = 0.5
_BATCH = 100


def account_of(context: Context) -> str:
    """The account the call acts for; PERMISSION_DENIED without one (events and webhooks are an
    account's, and a client secret reaches one order, not its account)."""
    scope = caller_scope(context.invocation_metadata())
    if scope.account_id is None:
        raise PermissionDenied("events and webhooks need an account's API key")
    return scope.account_id


def page_size(requested: int) -> int:
    size = requested or DEFAULT_PAGE_SIZE
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise InvalidArgument("invalid page size", violations=[("page_size", f"must be between 1 and {MAX_PAGE_SIZE}")])
    return size


class EventServicer(events_pb2_grpc.EventServiceServicer):
    def __init__(self, feed: Feed, changes: LocalChanges) -> None:
        self.feed = feed
        self.changes = changes

    async def _check_reached(self, account_id: str, after: int) -> None:
        """A cursor past the account's newest event was not given for this feed (another
        account's, or made up): following it would skip events, so it is refused."""
        if after and after > await self.feed.head(account_id):
            raise InvalidArgument("invalid cursor", violations=[("after", "is not a cursor of this account's feed")])

    async def ListEvents(self, request: pb.ListEventsRequest, context: Context) -> pb.ListEventsResponse:
        account_id = account_of(context)
        size = page_size(request.page_size)
        after = decode_cursor(request.after) if request.after else 0
        found = await self.feed.page(account_id, after, size)
        if not found:
            await self._check_reached(account_id, after)
        next_cursor = encode_cursor(found[-1].seq if found else after)
        return pb.ListEventsResponse(events=[f.event for f in found], next_cursor=next_cursor)

    async def WatchEvents(self, request: pb.WatchEventsRequest, context: Context) -> AsyncIterator[pb.Event]:
        account_id = account_of(context)
        with NEWS.subscribe(account_id) as news:
            if not request.HasField("after"):
                after = await self.feed.head(account_id)
            else:
                after = decode_cursor(request.after) if request.after else 0
                await self._check_reached(account_id, after)
            await context.send_initial_metadata(((CURSOR_KEY, encode_cursor(after)),))
            while True:
                if self.changes.closed:
                    raise Unavailable("the order service is shutting down; watch again from the last cursor")
                news.clear()  # before reading: a commit during the read wakes us again
                found = await self.feed.page(account_id, after, _BATCH)
                for item in found:
                    yield item.event
                    after = item.seq
                if len(found) < _BATCH:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(news.wait(), POLL_S)

"""Long polling: `GET /v1/orders/{id}` with `If-None-Match` and `Prefer: wait=N` (RFC 7240).

The answer is held until the order has a version other than the one the client has (200 with
the order) or until N seconds have passed (304). The held request waits on the hub like any
other client, so it is answered as soon as the change reaches the gateway, and 1,000 held
requests for one order still cost the order service one stream.
"""

from __future__ import annotations

import asyncio
import re

from starlette.responses import Response

from common.caller import CallerScope
from gateway.errors import ApiError
from gateway.push.hub import Hub, OrderNotFound, PushUnavailable
from gateway.push.subscription import End
from gateway.responses import etag

MIN_WAIT_S = 1
MAX_WAIT_S = 60
_WAIT_RE = re.compile(r'^\s*wait\s*=\s*"?(\d{1,6})"?\s*$', re.IGNORECASE)
_ETAG_RE = re.compile(r'\s*(?:W/)?"([^"]*)"\s*')


def requested_wait(prefer: str | None) -> int | None:
    """The `wait` preference in seconds, brought into 1..60; None when there is none.

    `Prefer: respond-async, wait=30` → 30; `wait=600` → 60; `wait=0` or `wait=x` → None."""
    if not prefer:
        return None
    for preference in prefer.split(","):
        match = _WAIT_RE.match(preference.split(";", 1)[0])
        if match and int(match.group(1)) >= MIN_WAIT_S:
            return min(int(match.group(1)), MAX_WAIT_S)
    return None


def etag_matches(if_none_match: str | None, tag: str) -> bool:
    """Whether `If-None-Match` (a list of entity tags, weak or strong, or `*`) names `tag`."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    wanted = tag.strip('"')
    return any(
        (match := _ETAG_RE.fullmatch(candidate)) is not None and match.group(1) == wanted
        for candidate in if_none_match.split(",")
    )


_VERSION_TAG_RE = re.compile(r'\s*(?:W/)?"(\d{1,18})"\s*')


def resume_version(if_none_match: str) -> int:
    """For long polling: the version the client has, from `If-None-Match: "<version>"` (the
    resume point). Anything else — `*`, a list, a tag that is not a version — is a 400."""
    match = _VERSION_TAG_RE.fullmatch(if_none_match)
    if match is None:
        raise ApiError(
            400,
            "long polling needs If-None-Match with the version you have",
            errors=[{"field": "If-None-Match", "message": 'must be one ETag of an order version, like "3"'}],
        )
    return int(match.group(1))


def check_not_ahead(version: int, current: int) -> None:
    if version > current:
        raise ApiError(
            400,
            f"If-None-Match names version {version}; the order is at version {current}",
            errors=[{"field": "If-None-Match", "message": f"must be a version ≤ {current}"}],
        )


def applied(wait: int) -> dict[str, str]:
    return {"Preference-Applied": f"wait={wait}"}


async def hold(hub: Hub, order_id: str, version: int, wait: int, scope: CallerScope) -> Response:
    """Wait up to `wait` seconds for a version after `version`: 200 with it, or 304."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    try:
        subscription = await hub.subscribe(order_id, version, scope, channel="long_poll", replay=False)
    except OrderNotFound:
        raise ApiError(404, f"order {order_id} not found") from None
    except PushUnavailable:
        raise ApiError(503, "the order service is unavailable; try again shortly") from None
    try:
        async with asyncio.timeout_at(deadline):
            update = await subscription.get_latest()
            if update is None and subscription.end is End.FINAL:
                # The order is final: it will not change, but the client asked to be held.
                subscription.close()
                await asyncio.sleep(deadline - loop.time())
    except TimeoutError:
        update = None
    finally:
        subscription.close()
    headers = applied(wait)
    if update is None:
        return Response(status_code=304, headers={"ETag": etag(version), **headers})
    headers["ETag"] = etag(update.version)
    return Response(update.body, media_type="application/json", headers=headers)

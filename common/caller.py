"""Whom a gRPC call acts for (docs/security.md#security): its `CallerScope`, read from its metadata.

The gateway authenticates the caller and says so in two metadata entries:

- `x-account-id`: an API key's account. The services show it only what that account created
  (another account's id is NOT_FOUND, as if it did not exist) and keep its idempotency keys
  apart from every other account's;
- `x-client-secret`: an order's client secret, as a browser or the phone page sends it. It
  reaches that one order (and its payment), for reading and for confirming, nothing else.

A call with neither is internal (the order service's reconciler, an operator's grpcurl) and is
not scoped. Whether a caller may send them at all is its certificate's business (common.authz).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import grpc

from common.errors import InvalidArgument, PermissionDenied
from common.input_limits import (
    ACCOUNT_ID_RE,
    ACCOUNT_ID_RULE,
    CLIENT_SECRET_RE,
    CLIENT_SECRET_RULE,
    IDEMPOTENCY_KEY_RE,
    IDEMPOTENCY_KEY_RULE,
)

ACCOUNT_KEY = "x-account-id"
CLIENT_SECRET_KEY = "x-client-secret"
SCOPE_KEYS = frozenset({ACCOUNT_KEY, CLIENT_SECRET_KEY})
IDEMPOTENCY_KEY = "idempotency-key"


def secrets_equal(given: str, expected: str) -> bool:
    """Constant time in the content: a wrong guess takes as long whichever character is wrong.
    An empty `expected` (a record from before client secrets) matches nothing."""
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


@dataclass(frozen=True, slots=True)
class CallerScope:
    account_id: str | None = None
    client_secret: str | None = None

    @property
    def internal(self) -> bool:
        return self.account_id is None and self.client_secret is None

    def may_see(self, account_id: str, client_secret: str) -> bool:
        """Whether a record of `account_id` with `client_secret` is in this scope."""
        if self.account_id is not None:
            return account_id == self.account_id
        if self.client_secret is not None:
            return secrets_equal(self.client_secret, client_secret)
        return True

    def require_account(self, action: str) -> None:
        """Changes other than a confirmation need an API key's account (or an internal call)."""
        if self.client_secret is not None:
            raise PermissionDenied(f"a client secret cannot {action}; use a secret API key")

    def idempotency_prefix(self) -> str:
        """What the scope of an idempotency key starts with: the account's id, or a digest of the
        client secret (never the secret itself: the scope is stored in clear); nothing for an
        internal call, whose keys are scoped by path alone, as before accounts existed."""
        if self.account_id is not None:
            return f"{self.account_id}/"
        if self.client_secret is not None:
            return f"cs:{hashlib.sha256(self.client_secret.encode()).hexdigest()[:32]}/"
        return ""

    def metadata(self) -> tuple[tuple[str, str], ...]:
        if self.account_id is not None:
            return ((ACCOUNT_KEY, self.account_id),)
        if self.client_secret is not None:
            return ((CLIENT_SECRET_KEY, self.client_secret),)
        return ()


INTERNAL = CallerScope()


def caller_scope(metadata: Iterable[tuple[str, str | bytes]] | None) -> CallerScope:
    """The scope a call's metadata names; INVALID_ARGUMENT for a malformed value or for both
    at once (which would be ambiguous). The values are never echoed: one may be a secret."""
    account_id: str | None = None
    client_secret: str | None = None
    for key, value in metadata or ():
        if key == ACCOUNT_KEY:
            if not isinstance(value, str) or not ACCOUNT_ID_RE.match(value):
                raise InvalidArgument(
                    "invalid x-account-id", violations=[(ACCOUNT_KEY, ACCOUNT_ID_RULE)]
                )
            account_id = value
        elif key == CLIENT_SECRET_KEY:
            if not isinstance(value, str) or not CLIENT_SECRET_RE.match(value):
                raise InvalidArgument(
                    "invalid x-client-secret", violations=[(CLIENT_SECRET_KEY, CLIENT_SECRET_RULE)]
                )
            client_secret = value
    if account_id is not None and client_secret is not None:
        raise InvalidArgument("send x-account-id or x-client-secret, not both")
    if account_id is None and client_secret is None:
        return INTERNAL
    return CallerScope(account_id, client_secret)


@dataclass(frozen=True, slots=True)
class Call:
    """What a handler reads of its call besides the request: whom it acts for, how long it may
    take (what is left of the caller's deadline, passed on to the next service), and the REST
    Idempotency-Key the gateway forwarded, if any."""

    caller: CallerScope
    timeout: float
    idempotency_key: str | None = None

    @classmethod
    def of(cls, context: grpc.aio.ServicerContext[Any, Any], default_timeout: float) -> Call:
        metadata = context.invocation_metadata()
        remaining = context.time_remaining()
        timeout = default_timeout if remaining is None else max(remaining, 0.001)
        return cls(caller_scope(metadata), timeout, _idempotency_key(metadata))


def _idempotency_key(metadata: Iterable[tuple[str, str | bytes]] | None) -> str | None:
    for key, value in metadata or ():
        if key == IDEMPOTENCY_KEY:
            if not isinstance(value, str) or not IDEMPOTENCY_KEY_RE.match(value):
                raise InvalidArgument("invalid idempotency key", violations=[("Idempotency-Key", IDEMPOTENCY_KEY_RULE)])
            return value
    return None

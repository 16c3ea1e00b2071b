"""The gateway's API keys (docs/security.md#api-keys): `GATEWAY_API_KEYS`, parsed once at start into
digests.

    GATEWAY_API_KEYS=acct_shop:sk_live_…,acct_shop:rk_live_…,acct_other:sk_live_…

Each entry is `<account_id>:<key>`. A key is at least 24 characters of [A-Za-z0-9_] and starts
with `sk_` (it may do everything for its account) or `rk_` (read only: GET and the push
channels). An account may have several keys (to rotate one without downtime); one key may not
name two accounts.

Only a keyed digest of each key is kept (BLAKE2b with a key of this process's own, random per
start): the key ring holds nothing that would let a memory dump or a log line reproduce a key,
and a lookup is a dictionary access on digests that an attacker can neither choose nor predict,
so how long it takes says nothing about any key. The match itself is confirmed with
`hmac.compare_digest`. Each key also has a name for the rate limiter (`key_id`), an unkeyed
digest that is the same in every gateway replica, so that replicas sharing a Redis count a key
together; it never leaves the gateway but as that Redis's key name, and leads back to its key only
by guessing the key. (The environment variable itself is the process's to protect, as any
secret given through the environment.)
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from common.input_limits import ACCOUNT_ID_RE

# An account id: common.input_limits.ACCOUNT_ID_RE, which the services check in every call's metadata.
ACCOUNT_ID_RULE = "must be 1-64 characters of [A-Za-z0-9_]"
KEY_RE = re.compile(r"(sk|rk)_[A-Za-z0-9_]{21,252}\Z")
MIN_KEY_LENGTH = 24
READ_ONLY_PREFIX = "rk_"


class KeyListError(ValueError):
    """GATEWAY_API_KEYS cannot be used. The message never contains a key."""


@dataclass(frozen=True, slots=True)
class ApiKey:
    """What a key stands for. `key_id` names it in the rate limiter, never the key: an unkeyed
    digest (`_key_id`), so that every gateway replica names a key alike and counts it in the
    same place of a shared Redis."""

    account_id: str
    read_only: bool
    key_id: str


class KeyRing:
    def __init__(self, entries: dict[bytes, ApiKey], pepper: bytes) -> None:
        # digest → (digest, key): the stored digest is compared once more, in constant time.
        self._entries = {digest: (digest, key) for digest, key in entries.items()}
        self._pepper = pepper

    def __repr__(self) -> str:  # what a settings dump or a traceback shows
        return f"KeyRing({len(self._entries)} keys, accounts {', '.join(sorted(self.accounts))})"

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def keys(self) -> list[ApiKey]:
        return [key for _, key in self._entries.values()]

    @property
    def accounts(self) -> frozenset[str]:
        return frozenset(key.account_id for key in self.keys)

    def lookup(self, key: str) -> ApiKey | None:
        """The key's account and rights, or None for an unknown key."""
        digest = _digest(key, self._pepper)
        found = self._entries.get(digest)
        if found is None or not hmac.compare_digest(found[0], digest):
            return None
        return found[1]


def _digest(key: str, pepper: bytes) -> bytes:
    return hashlib.blake2b(key.encode(), key=pepper, digest_size=32).digest()


def _key_id(key: str) -> str:
    """Unlike the ring's digests, the same in every process. It leads back to its key only by
    guessing the key — hopeless for a key of random characters, as `sk_…` keys should be."""
    return "key_" + hashlib.blake2b(key.encode(), digest_size=12, person=b"shop-rate-limit").hexdigest()


def parse_keys(text: str) -> KeyRing:
    """`<account_id>:<key>,…` → a KeyRing. KeyListError names the entry by position only."""
    pepper = secrets.token_bytes(32)
    entries: dict[bytes, ApiKey] = {}
    items = [item.strip() for item in text.split(",")]
    if not any(items):
        raise KeyListError("no API key is configured; give at least one `<account_id>:<key>`")
    for position, item in enumerate(items, start=1):
        account_id, colon, key = item.partition(":")
        where = f"entry {position}"
        if not colon:
            raise KeyListError(f"{where} is not `<account_id>:<key>`")
        if not ACCOUNT_ID_RE.match(account_id):
            raise KeyListError(f"{where}: the account id {ACCOUNT_ID_RULE}")
        if len(key) < MIN_KEY_LENGTH or not KEY_RE.match(key):
            raise KeyListError(
                f"{where}: the key must start with sk_ or rk_ and have {MIN_KEY_LENGTH}-255 characters of [A-Za-z0-9_]"
            )
        digest = _digest(key, pepper)
        if digest in entries:
            raise KeyListError(f"{where}: the same key is listed twice")
        entries[digest] = ApiKey(account_id, key.startswith(READ_ONLY_PREFIX), _key_id(key))
    return KeyRing(entries, pepper)

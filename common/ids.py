"""Resource ids: a type prefix and a ULID, so they sort by creation time (`ord_01JD…`)."""

from __future__ import annotations

from ulid import ULID


def new_id(prefix: str) -> str:
    return f"{prefix}_{ULID()}"

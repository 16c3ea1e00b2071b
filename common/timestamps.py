"""UTC times: the databases store integers (microseconds since the epoch), the wire
google.protobuf.Timestamp, the REST API RFC 3339 text."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp


def utcnow() -> datetime:
    return datetime.now(UTC)


def now_us() -> int:
    return time.time_ns() // 1000


def to_timestamp(value: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value.astimezone(UTC))
    return ts


def timestamp_us(us: int) -> Timestamp:
    return Timestamp(seconds=us // 1_000_000, nanos=(us % 1_000_000) * 1000)


def us_of(ts: Timestamp) -> int:
    return ts.seconds * 1_000_000 + ts.nanos // 1000


def from_timestamp(ts: Timestamp) -> datetime:
    return ts.ToDatetime(tzinfo=UTC)


def rfc3339(ts: Timestamp) -> str:
    """`2026-11-24T21:03:04.512Z`: milliseconds, always UTC, always with `Z`."""
    value = from_timestamp(ts)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"

"""UTC times: the database stores aware datetimes, the wire google.protobuf.Timestamp."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp


def utcnow() -> datetime:
    return datetime.now(UTC)


def to_timestamp(value: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value.astimezone(UTC))
    return ts


def from_timestamp(ts: Timestamp) -> datetime:
    return ts.ToDatetime(tzinfo=UTC)


def rfc3339(ts: Timestamp) -> str:
    """`2026-11-24T21:03:04.512Z`: milliseconds, always UTC, always with `Z`."""
    value = from_timestamp(ts)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from common.timestamps import from_timestamp, rfc3339, to_timestamp


def test_rfc3339_is_utc_with_milliseconds() -> None:
    moment = datetime(2026, 11, 24, 22, 3, 4, 512_999, tzinfo=timezone(timedelta(hours=1)))
    assert rfc3339(to_timestamp(moment)) == "2026-11-24T21:03:04.512Z"


def test_round_trip() -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    assert from_timestamp(to_timestamp(moment)) == moment

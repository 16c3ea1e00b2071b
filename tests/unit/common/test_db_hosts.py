"""PostgreSQL URLs with several hosts (common/db/hosts.py): what is accepted, and the DSN each
host is tried with."""

from __future__ import annotations

import pytest

from common.db import DatabaseUrlError, check_url
from common.db.hosts import PostgresUrl

FAILOVER = "postgresql://shop:s3cret@db-a:5432,db-b:5433/orders?target_session_attrs=read-write"


def test_every_host_gets_the_same_user_database_and_options() -> None:
    assert PostgresUrl.parse(FAILOVER).dsns == [
        "postgresql://shop:s3cret@db-a:5432/orders?target_session_attrs=read-write",
        "postgresql://shop:s3cret@db-b:5433/orders?target_session_attrs=read-write",
    ]


@pytest.mark.parametrize(
    ("url", "dsns"),
    [
        ("postgresql://u@h/db", ["postgresql://u@h/db"]),
        ("postgresql+asyncpg://h:1/db", ["postgresql://h:1/db"]),
        ("postgres://[::1]:5432,[fe80::2]/db", ["postgresql://[::1]:5432/db", "postgresql://[fe80::2]/db"]),
        ("postgresql:///db?host=/run/postgresql", ["postgresql:///db?host=/run/postgresql"]),
        ("postgresql://u:p@w@h1,h2", ["postgresql://u:p@w@h1", "postgresql://u:p@w@h2"]),
    ],
)
def test_forms(url: str, dsns: list[str]) -> None:
    assert PostgresUrl.parse(url).dsns == dsns


def test_settings_accept_a_url_with_several_hosts() -> None:
    assert check_url(FAILOVER) == FAILOVER


@pytest.mark.parametrize(
    "url", ["postgresql://h1:5432,h2:x/db", "postgresql://[::1/db", "postgresql://h:5432:1/db", "mysql://h/db", "db"]
)
def test_refused(url: str) -> None:
    with pytest.raises(DatabaseUrlError):
        check_url(url)

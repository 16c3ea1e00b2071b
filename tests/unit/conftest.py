"""What the unit tests share."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_server(request: pytest.FixtureRequest) -> str | None:
    """None for SQLite; the URL of the session's PostgreSQL server for PostgreSQL."""
    return None if request.param == "sqlite" else request.getfixturevalue("postgres_server")

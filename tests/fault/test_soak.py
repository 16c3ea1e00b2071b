"""A minute of the soak (bench/soak; `make soak` runs it for ten): the PostgreSQL set-up under the
steady mixed load, with watchers on all four channels hanging up and resuming, a client on a new
connection for every request, and idle gRPC channels. No error and nothing lost, the books
audited clean, and every sample taken — memory, open files, database connections, event loop
lag of every process. (Whether memory and open files stay flat a minute cannot show: that is
the long run's figure, in bench/results/soak.md.)"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.soak.__main__ import run, write
from bench.soak.run import CHANNELS, Plan
from tests import postgres
from tests.artifacts import ARTIFACTS
from tests.conftest import require_tool

pytestmark = pytest.mark.postgres

SECONDS = float(os.environ.get("SOAK_TEST_SECONDS", "60"))


def test_a_minute_of_steady_load(tmp_path: Path) -> None:
    require_tool(postgres.available(), "PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    plan = Plan(seconds=SECONDS)
    results = run(plan, tmp_path / "soak")
    write(results, ARTIFACTS / "soak")
    figures = results["soak"]

    assert figures["errors"] == 0, figures["first_errors"]
    assert figures["lost"] == figures["unanswered_creates"] == 0
    assert figures["audit_problems"] == 0, figures["first_audit_problems"]
    assert figures["requests_by_kind"].keys() >= {"create", "confirm", "refund", "get", "list", "list (new connection)"}
    for channel in CHANNELS:
        assert figures["watchers_by_channel"][channel]["orders"] > 0, channel
    # A sample every Plan.sample_s of every process (two of each service, two gateways).
    series = figures["series"]
    assert len(series["at_s"]) >= SECONDS / plan.sample_s
    names = {f"{s}.{n}" for s in ("gateway", "order_service", "payment_service") for n in (1, 2)}
    assert set(series["rss_mib"]) == set(series["open_files"]) == set(series["loop_lag_p99_ms"]) == names
    assert all(min(values) > 0 for values in (*series["rss_mib"].values(), *series["open_files"].values()))
    # The connections of each replica: its pool, its health probe, and the order service's listener.
    connections = {key: max(values) for key, values in series["db_connections"].items()}
    assert connections["orders/health probe"] == connections["payments/health probe"] == 2
    assert connections["orders/order_service listener"] == 2
    assert connections["orders/pool"] >= 2
    assert connections["payments/pool"] >= 2

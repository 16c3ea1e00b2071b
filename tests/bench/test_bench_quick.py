"""`python -m bench --quick` still works: it starts what it needs, measures every section, and
writes the report. It checks the harness, never the speed (speed goals are `make bench`'s)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.__main__ import SECTIONS
from tests import pg_statements, postgres, redis_server
from tests.harness import ROOT

ON_POSTGRES = ("e2e_postgres", "push_replicas")
CHANNELS = ("short_poll", "long_poll", "sse", "websocket")


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path_factory.mktemp("bench")
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        # About a minute on an idle machine; the bound is for a hang, not for the speed.
        timeout=900,
        check=False,
    )
    return done, out


@pytest.fixture(scope="module")
def report(quick: tuple[subprocess.CompletedProcess[str], Path]) -> dict[str, Any]:
    done, out = quick
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    result: dict[str, Any] = json.loads((out / "latest.json").read_text())
    return result


def test_every_section_ran(report: dict[str, Any]) -> None:
    for section in SECTIONS:
        assert "error" not in report[section], report[section]
        if (
            (section in ON_POSTGRES and not postgres.available())
            or (section == "ratelimit" and not redis_server.available())
            or (section == "statements" and not pg_statements.available())
        ):
            assert "skipped" in report[section]
        else:
            assert "skipped" not in report[section], report[section]
    assert report["mode"] == "quick"


def needs_postgres() -> None:
    if not postgres.available():
        pytest.skip("PostgreSQL server binaries are not installed: the bench skipped its PostgreSQL sections")


def check_load_rows(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        assert row["rps"] > 0, row
        assert 0 < row["p50_ms"] <= row["p99_ms"], row
        assert row["errors"] == 0, row
        assert row["cpu_us"] > 0, row


def test_machine_is_recorded(report: dict[str, Any]) -> None:
    machine = report["machine"]
    assert machine["cpu_model"]
    assert machine["cores"] >= 1
    assert machine["python"].count(".") == 2


def test_codec_figures(report: dict[str, Any]) -> None:
    for payload in ("small", "large"):
        for name in ("protobuf", "json", "orjson"):
            assert report["codec"][payload][name]["us"] > 0
            assert report["codec"][payload][name]["bytes"] > 0


def test_rate_limit_figures(report: dict[str, Any]) -> None:
    if not redis_server.available():
        pytest.skip("redis-server is not installed: the bench skipped its rate-limit section")
    rows = report["ratelimit"]["rows"]
    assert {(r["storage"], r["mode"]) for r in rows} == {
        (s, m) for s in ("memory", "redis") for m in ("sequential", "concurrent")
    }
    for row in rows:
        assert row["us_per_check"] > 0, row
    assert all(r["redis_cpu_us_per_check"] > 0 for r in rows if r["storage"] == "redis")
    assert set(report["ratelimit"]["redis_vs_memory"]) == {"sequential", "concurrent"}


def test_hop_figures(report: dict[str, Any]) -> None:
    rows = report["hop"]["results"]
    assert {(r["transport"], r["payload"]) for r in rows} == {
        (t, p) for t in ("grpc", "httpx", "aiohttp") for p in ("small", "large")
    }
    for row in rows:
        assert row["rps"] > 0, row
        assert 0 < row["p50_ms"] <= row["p90_ms"] <= row["p99_ms"], row
        assert row["server_cpu_us"] > 0, row
        assert row["errors"] == 0, row
    assert all(r["grpc_vs_httpx"] > 0 and r["grpc_vs_aiohttp"] > 0 for r in report["hop"]["ratios"])


def test_end_to_end_figures(report: dict[str, Any]) -> None:
    rows = report["e2e"]["results"]
    names = ("orders", "bare", "plain", "orders_traced", "orders_sampled")
    assert {(r["name"], r["concurrency"]) for r in rows} == {(n, c) for n in names for c in (1, 32)}
    check_load_rows(rows)
    for row in rows:
        if row["name"] != "plain":
            assert row["gateway_cpu_us"] > 0, row
    ratios = {(r["name"], r["baseline"], r["concurrency"]): r["share"] for r in report["e2e"]["ratios"]}
    assert set(ratios) == {
        (n, b, c)
        for n, b in (("orders", "plain"), ("orders", "bare"), ("orders_traced", "orders"), ("orders_sampled", "orders"))
        for c in (1, 32)
    }
    assert all(share > 0 for share in ratios.values())
    assert report["e2e"]["tracing"]["batches"] > 0  # the traced stacks did send their spans


def test_server_figures(report: dict[str, Any]) -> None:
    rows = report["server"]["results"]
    assert {(r["server"], r["route"]) for r in rows} == {
        (s, r) for s in ("uvicorn", "granian") for r in ("bare", "orders")
    }
    check_load_rows(rows)
    assert {r["name"] for r in report["server"]["ratios"]} == {"granian_bare", "granian_orders"}


def test_postgres_figures(report: dict[str, Any]) -> None:
    needs_postgres()
    rows = report["e2e_postgres"]["results"]
    assert {(r["name"], r["order_replicas"], r["payment_replicas"]) for r in rows} == {
        ("postgres_single", 1, 1),
        ("postgres_r1", 1, 2),
        ("postgres_r2", 2, 2),
    }
    check_load_rows(rows)
    for row in rows:
        assert row["postgres_cpu_us"] > 0, row
        assert row["order_service_cpu_us"] > 0, row
        assert row["payment_service_cpu_us"] > 0, row
    assert report["e2e_postgres"]["ratios"][0]["share"] > 0


def test_push_across_replicas(report: dict[str, Any]) -> None:
    needs_postgres()
    part = report["push_replicas"]
    rows = {(r["channel"], r["replica"]): r for r in part["delay"]}
    assert set(rows) == {(c, w) for c in ("grpc", "sse") for w in ("same", "cross")}
    for row in rows.values():
        assert row["missed"] == 0, row
        assert row["seen"] == part["trials"], row
        assert 0 < row["p50_ms"] <= row["p99_ms"], row


def test_statement_counts(report: dict[str, Any]) -> None:
    if not pg_statements.available():
        pytest.skip("PostgreSQL or its pg_stat_statements extension is not installed: the bench skipped the section")
    part = report["statements"]
    rows = {r["idempotency_key"]: r for r in part["rows"]}
    assert set(rows) == {False, True}
    for row in rows.values():
        # Whatever the code's counts, an order runs statements and commits, and the breakdown
        # accounts for nearly all of its statements.
        assert row["statements_per_order"] >= 1, row
        assert row["commits_per_order"] >= 1, row
        listed = sum(line["per_order"] for line in row["breakdown"])
        assert abs(listed - row["statements_per_order"]) < 1, row
    assert part["background"]["window_s"] > 0


def test_push_figures(report: dict[str, Any]) -> None:
    push = report["push"]
    assert push["available"] == dict.fromkeys(CHANNELS, True), push["unavailable"]
    for channel in CHANNELS:
        rows = [r for r in push["delay"] if r["channel"] == channel]
        assert rows, channel
        for row in rows:
            assert row["missed"] == 0, row
            assert 0 < row["p50_ms"] <= row["p99_ms"], row
    idle = {r["channel"]: r for r in push["idle"]}
    assert idle["short_poll"]["requests_per_min"] > 0
    assert {r["channel"] for r in push["memory"]} == {"sse", "websocket"}


def test_webhook_figures(report: dict[str, Any]) -> None:
    rows = report["webhooks"]["results"]
    assert [(r["endpoints"], r["dead"], r["mode"]) for r in rows] == [
        (e, d, m) for e, d in ((1, 0), (100, 1)) for m in ("burst", "paced")
    ]
    for row in rows:
        # Every event reached every live endpoint (the run waits for that), none of them twice.
        assert row["deliveries"] == row["orders"] * report["webhooks"]["events_per_order"] * (
            row["endpoints"] - row["dead"]
        )
        assert row["duplicates"] == 0, row
        assert row["deliveries_per_s"] > 0, row
        assert 0 < row["p50_ms"] <= row["p99_ms"] <= row["max_ms"], row


def test_goals_are_reported(report: dict[str, Any]) -> None:
    assert report["goals"]
    for goal in report["goals"]:
        if goal["id"].startswith("cross_replica") and not postgres.available():
            continue
        if goal["id"].startswith("pg_") and not pg_statements.available():
            continue
        assert goal["measured"] is not None, goal
        assert goal["met"] in (True, False), goal


def test_table_and_plots(quick: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    done, out = quick
    titles = ["1a.", "1b.", "1c.", "2a.", "2c.", "3a.", "3b.", "4.", "Goals"]
    titles += ["2b.", "3c."] if postgres.available() else []
    titles += ["2d.", "2e."] if pg_statements.available() else []
    for title in titles:
        assert f"\n{title}" in done.stdout
    for name in ("codec", "hop", "e2e", "push", "variants"):
        png = out / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "latest.md").read_text().count("|") > 50

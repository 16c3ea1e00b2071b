"""`python -m bench --quick` still works: it starts what it needs, measures every section, and
writes the report. It checks the harness, never the speed (speed goals are `make bench`'s)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.harness import ROOT

SECTIONS = ("codec", "hop", "e2e", "push", "tracing")
CHANNELS = ("short_poll", "long_poll", "sse", "websocket")


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path_factory.mktemp("bench")
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
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
    assert report["mode"] == "quick"


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
    rows = {r["name"]: r for r in report["e2e"]["results"]}
    assert set(rows) == {"orders", "bare"}
    for row in rows.values():
        assert row["rps"] > 0, row
        assert 0 < row["p50_ms"] <= row["p99_ms"], row
        assert row["errors"] == 0, row
    assert report["e2e"]["ratios"][0]["orders_vs_bare"] > 0


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


def test_goals_are_reported(report: dict[str, Any]) -> None:
    assert report["goals"]
    assert all(goal["measured"] is not None for goal in report["goals"])


def test_table_and_plots(quick: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    done, out = quick
    for title in ("1a.", "1b.", "1c.", "2.", "3a.", "3b.", "4a.", "4b.", "Goals"):
        assert f"\n{title}" in done.stdout
    for name in ("codec", "hop", "e2e", "push"):
        png = out / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "latest.md").read_text().count("|") > 50


def test_tracing_figures(report: dict[str, Any]) -> None:
    rows = {r["tracing"]: r for r in report["tracing"]["results"]}
    assert set(rows) == {"off", "on", "sampled"}
    for row in rows.values():
        assert row["rps"] > 0, row
        assert row["errors"] == 0, row
        assert row["cpu_us"] > 0, row
    assert {r["tracing"] for r in report["tracing"]["ratios"]} == {"on", "sampled"}
    assert all(r["rps_on_vs_off"] > 0 for r in report["tracing"]["ratios"])
    assert report["tracing"]["exported"]["batches"] > 0  # the traced stack did send its spans

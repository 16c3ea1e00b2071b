"""The compose stack of the end-to-end suite: built and started once for the module that asks for
it, and always taken down with its volumes (`down -v`), whatever the tests did."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import require_tool
from tests.e2e.compose import ComposeStack, compose_command, docker_engine_reachable
from tests.harness import ROOT

ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS_DIR", ROOT / "test-artifacts"))


def record_figures(figures: dict[str, float]) -> None:
    """Keep the measured figures in test-artifacts/compose-e2e.json and print them to the log."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    document = {"recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **figures}
    (ARTIFACTS / "compose-e2e.json").write_text(json.dumps(document, indent=2) + "\n")
    print(f"\n[compose-e2e] {json.dumps(figures)}")


def new_compose_stack(report: str, **options: Any) -> ComposeStack:
    """A compose stack (not built) logging to test-artifacts/<report>.log, once Docker and a
    compose command are known to be there."""
    require_tool(docker_engine_reachable(), "no Docker engine is reachable (`docker info` fails)")
    command = compose_command()
    require_tool(command is not None, "neither `docker-compose` nor `docker compose` is installed")
    assert command is not None
    log_path = ARTIFACTS / f"{report}.log"
    log_path.unlink(missing_ok=True)
    return ComposeStack(command, log_path, **options)


@pytest.fixture(scope="module")
def compose() -> Iterator[ComposeStack]:
    stack = new_compose_stack("compose-e2e")
    try:
        started = time.monotonic()
        stack.build()
        built = time.monotonic()
        stack.up()  # returns once the depends_on chain is healthy and the gateway started
        stack.wait_healthy()
        record_figures({"build_s": round(built - started, 1), "up_to_healthy_s": round(time.monotonic() - built, 1)})
        yield stack
    finally:
        stack.down(volumes=True)  # keeps the logs in test-artifacts/compose-e2e.log first


@pytest.fixture
def http(compose: ComposeStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=compose.url, headers=compose.headers, timeout=15) as client:
        yield client

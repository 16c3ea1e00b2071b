"""`make run` (scripts/run.py) as a newcomer meets it: a bad variable is one line naming it, a
stack that cannot become ready says why and gives up, and changing only the ports still gives a
stack whose parts find each other."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import grpc
import httpx
import pytest

from shop.order.v1 import order_pb2, order_pb2_grpc
from tests.bad_settings import cases
from tests.harness import ROOT, free_port
from tests.integration.helpers import order_body

# As make run starts it: as a module, so that the repository root (where the generated `shop`
# package lives) is on the path, whatever the editable install knew when it was made.
RUN = [sys.executable, "-m", "scripts.run"]
# Variables of the services that a developer's shell may have set: each test says what it wants.
_SERVICE_VARIABLES = ("GATEWAY_", "ORDER_", "PAYMENT_", "LOG_", "RUN_", "SSE_")


def run_env(tmp_path: Path, **variables: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SERVICE_VARIABLES)}
    return {
        **env,
        "ORDER_DATABASE_URL": f"sqlite:///{tmp_path}/orders.db",
        "PAYMENT_DATABASE_URL": f"sqlite:///{tmp_path}/payments.db",
        # Free Prometheus ports: the defaults (9151, 9152) may be held by a `make run` of one's own.
        "ORDER_METRICS_PORT": str(free_port()),
        "PAYMENT_METRICS_PORT": str(free_port()),
        "RUN_DEV_KEY_FILE": str(tmp_path / "dev-api-key"),
        **variables,
    }


# Bad values as `make run` meets them, by variable, with what its line must say.
BAD_VALUES = {
    "GATEWAY_PORT": {"abc": "valid integer", "99999": "65535", "0": "does not work with make run"},
    "ORDER_SERVICE_PORT": {"-1": "greater than or equal to 0"},
    "PAYMENT_ACTION_TIMEOUT_S": {"soon": "valid number"},
    "LOG_FORMAT": {"xml": "'json' or 'console'"},
    "RUN_READY_TIMEOUT_S": {"0": "greater than 0"},
}


@pytest.mark.parametrize(("variable", "value", "says"), cases(BAD_VALUES))
def test_a_bad_variable_is_one_line_naming_it(tmp_path: Path, variable: str, value: str, says: str) -> None:
    done = subprocess.run(
        RUN, cwd=ROOT, env=run_env(tmp_path, **{variable: value}), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"configuration error: {variable}: ")
    assert says in done.stderr


def test_make_run_passes_the_variable_through(tmp_path: Path) -> None:
    """The front door itself: make adds its own 'Error 1' line, and nothing else."""
    done = subprocess.run(
        ["make", "--no-print-directory", "run"],
        cwd=ROOT,
        env=run_env(tmp_path, GATEWAY_PORT="abc"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert "configuration error: GATEWAY_PORT: Input should be a valid integer" in done.stderr


def test_a_port_in_use_is_named(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        env = run_env(tmp_path, ORDER_SERVICE_PORT=str(port), PAYMENT_SERVICE_PORT=str(free_port()))
        done = subprocess.run(RUN, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr == (
        f"make run: 127.0.0.1:{port} (ORDER_SERVICE_HOST, ORDER_SERVICE_PORT) is in use;"
        " stop what holds it or choose another port\n"
    )


class Running:
    """scripts/run.py as a process whose output (the three services' too) is read as it comes."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._changed = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            async with self._changed:
                self.lines.append(raw.decode(errors="replace").rstrip("\n"))
                self._changed.notify_all()

    async def line(self, matches: Callable[[str], bool], timeout: float) -> str:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: any(map(matches, self.lines))), timeout)
        return next(line for line in self.lines if matches(line))

    async def exit_code(self, timeout: float) -> int:
        code = await asyncio.wait_for(self.proc.wait(), timeout)
        await self._reader
        return code

    def output(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
async def start_run() -> AsyncIterator[Callable[[dict[str, str]], Awaitable[Running]]]:
    started: list[Running] = []

    async def start(env: dict[str, str]) -> Running:
        proc = await asyncio.create_subprocess_exec(
            *RUN, cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        started.append(Running(proc))
        return started[-1]

    yield start
    for running in started:
        if running.proc.returncode is None:
            running.proc.send_signal(signal.SIGINT)
            await running.exit_code(30)


async def test_a_stack_that_never_becomes_ready_says_why_and_gives_up(
    tmp_path: Path, start_run: Callable[[dict[str, str]], Awaitable[Running]]
) -> None:
    nobody = free_port()
    env = run_env(
        tmp_path,
        GATEWAY_PORT=str(free_port()),
        ORDER_SERVICE_PORT=str(free_port()),
        PAYMENT_SERVICE_PORT=str(free_port()),
        ORDER_SERVICE_TARGET=f"127.0.0.1:{nobody}",
        RUN_READY_TIMEOUT_S="12",
    )
    running = await start_run(env)
    waiting = await running.line(lambda line: line.startswith("make run: payment service on"), 20)
    assert f"calling 127.0.0.1:{nobody}" in waiting
    assert "Waiting up to 12 s" in waiting

    assert await running.exit_code(30) == 1
    gave_up = next(line for line in running.lines if "gave up" in line)
    assert gave_up.startswith("make run: gave up after 12 s: order_service is unreachable")
    assert f"ORDER_SERVICE_TARGET=127.0.0.1:{nobody}" in gave_up
    assert any(line.startswith("make run: still waiting") for line in running.lines)
    # The gateway's access log leaves out the polling of /readyz: no flood while waiting.
    assert [line for line in running.lines if '"/readyz"' in line] == []


async def test_changing_only_the_ports_gives_a_stack_that_finds_itself(
    tmp_path: Path, start_run: Callable[[dict[str, str]], Awaitable[Running]]
) -> None:
    gateway_port, order_port, payment_port = free_port(), free_port(), free_port()
    env = run_env(
        tmp_path,
        GATEWAY_PORT=str(gateway_port),
        ORDER_SERVICE_PORT=str(order_port),
        PAYMENT_SERVICE_PORT=str(payment_port),
        LOG_LEVEL="WARNING",
        RUN_READY_TIMEOUT_S="30",
    )
    running = await start_run(env)
    await running.line(lambda line: f"gateway ready: http://localhost:{gateway_port}" in line, 45)
    # The banner gives the development key it made, kept for its owner's eyes only.
    exported = await running.line(lambda line: "export SHOP_KEY=" in line, 5)
    # Webhooks may call this machine (make run sets it, and says so: docs/webhooks.md#urls-that-are-refused).
    assert any("WEBHOOK_ALLOW_PRIVATE_NETWORKS=true" in line for line in running.lines)
    key = exported.split("=", 1)[1]
    key_file = tmp_path / "dev-api-key"
    assert key_file.read_text().strip() == key
    assert key_file.stat().st_mode & 0o777 == 0o600

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway_port}", timeout=10) as client:
        assert (await client.post("/v1/orders", json=order_body("pm_wallet_qr"))).status_code == 401
        reply = await client.post("/v1/orders", json=order_body("pm_wallet_qr"), auth=(key, ""))
    assert reply.status_code == 201, reply.text
    order = reply.json()
    receiver = {"url": f"http://127.0.0.1:{free_port()}/hook"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway_port}", timeout=10) as client:
        assert (await client.post("/v1/webhook_endpoints", json=receiver, auth=(key, ""))).status_code == 201
    # The public URL follows the gateway's port, and the order is in *this* order service.
    assert order["payment"]["next_action"]["confirm_url"].startswith(f"http://localhost:{gateway_port}/pay/")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{order_port}") as channel:
        stored = await order_pb2_grpc.OrderServiceStub(channel).GetOrder(
            order_pb2.GetOrderRequest(order_id=order["id"]), timeout=5
        )
    assert stored.id == order["id"]

    running.proc.send_signal(signal.SIGINT)
    assert await running.exit_code(30) == 0, running.output()

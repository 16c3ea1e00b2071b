"""`make run`: start the payment service, the order service and the gateway as three processes
(the same `python -m …` commands as anywhere else), wait until the gateway is ready, print its
URL, and stop all three on Ctrl-C or when one of them dies.

The environment is read by the services' own settings classes, so a bad value stops here with
the same one line that the service would print. The gRPC targets follow the ports: with only
ORDER_SERVICE_PORT changed, the gateway still finds the order service. A stack that does not
become ready within RUN_READY_TIMEOUT_S (60) is stopped, with the reason /readyz gave.

The gateway needs an API key (docs/security.md#development-keys). Unless GATEWAY_API_KEYS is given,
a development key is made once into data/dev-api-key (mode 0600, kept across runs, for the account
`acct_dev`) and printed in the banner; the demo page's routes act for `acct_dev` too
(GATEWAY_DEMO_ACCOUNT), so the orders made on the page show up in `curl -u "$SHOP_KEY:"
localhost:8000/v1/orders`.

Webhooks may call loopback and private addresses here (WEBHOOK_ALLOW_PRIVATE_NETWORKS=true,
unless it is given), so that a receiver on this machine works; the banner says so.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from common.settings import load_settings
from gateway.settings import GatewaySettings
from order_service.settings import OrderSettings
from payment_service.settings import PaymentSettings

SERVICES = ("payment_service", "order_service", "gateway")
POLL_INTERVAL_S = 0.25
# While waiting, a changed reason is reported at most this often.
REPORT_INTERVAL_S = 5.0
STOP_TIMEOUT_S = 15.0
DEV_ACCOUNT = "acct_dev"


class RunSettings(BaseSettings):
    """What `make run` itself reads."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    run_ready_timeout_s: float = Field(60, gt=0)
    # Where the development key is kept (relative to the directory make run is started in).
    run_dev_key_file: Path = Path("data/dev-api-key")


@dataclass(frozen=True)
class Listener:
    variable: str  # the prefix of its *_HOST and *_PORT variables
    host: str
    port: int

    @property
    def local(self) -> str:
        """host:port as a client on this machine reaches it (a wildcard address is loopback)."""
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(self.host, self.host)
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"


def _dev_key(path: Path) -> str:
    """The development key kept in `path`, made the first time (readable by its owner only)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(f"sk_test_{secrets.token_urlsafe(24).replace('-', '0')}\n")
    return path.read_text().strip()


def _development_defaults(key_file: Path) -> str | None:
    """The demo account and, unless keys are given, the development key, put into this
    process's environment (read by the settings below and passed on to the three). Returns the
    development key when one is used."""
    os.environ.setdefault("GATEWAY_DEMO_ACCOUNT", DEV_ACCOUNT)
    os.environ.setdefault("WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true")
    if "GATEWAY_API_KEYS" in os.environ:
        return None
    key = _dev_key(key_file)
    os.environ["GATEWAY_API_KEYS"] = f"{DEV_ACCOUNT}:{key}"
    return key


def _banner(public_url: str, local_url: str, dev_key: str | None, key_file: Path, private_webhooks: bool) -> str:
    lines = ["", f"  gateway ready: {public_url}  (demo page /, API docs /docs)"]
    if private_webhooks:
        lines.append("  webhooks may call loopback and private addresses (WEBHOOK_ALLOW_PRIVATE_NETWORKS=true)")
    if dev_key is not None:
        lines += [
            f"  development API key ({key_file}, account {DEV_ACCOUNT}):",
            f"    export SHOP_KEY={dev_key}",
            f'    curl -u "$SHOP_KEY:" {local_url}/v1/orders',
        ]
    return "\n".join([*lines, ""])


def _refuse(message: str) -> SystemExit:
    return SystemExit(f"make run: {message}")


def _check_listeners(listeners: list[Listener]) -> None:
    """One line for the first address that cannot be listened on: held by another program, or
    not an address of this machine. Port 0 (any free port) works for one service, not for three
    that must find each other."""
    for listener in listeners:
        if listener.port == 0:
            raise SystemExit(f"configuration error: {listener.variable}_PORT: 0 does not work with make run")
        with socket.socket(socket.AF_INET6 if ":" in listener.host else socket.AF_INET) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((listener.host, listener.port))
            except OSError as exc:
                where = f"{listener.host}:{listener.port} ({listener.variable}_HOST, {listener.variable}_PORT)"
                if exc.errno == errno.EADDRINUSE:
                    raise _refuse(f"{where} is in use; stop what holds it or choose another port") from None
                raise _refuse(f"cannot listen on {where}: {exc.strerror or exc}") from None


def _readiness(url: str) -> str | None:
    """None when /readyz says 200, else why not."""
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=2) as reply:
            return None if reply.status == 200 else f"/readyz answered {reply.status}"
    except urllib.error.HTTPError as exc:
        try:
            return str(json.loads(exc.read())["detail"]).removeprefix("not ready: ")
        except (ValueError, KeyError, TypeError):
            return f"/readyz answered {exc.code}"
    except OSError:
        return "the gateway does not answer yet"


class Stack:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self) -> None:
        for name in SERVICES:
            self.procs[name] = subprocess.Popen([sys.executable, "-m", name], env=self.env)

    def exited(self) -> str | None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                return f"{name} stopped (exit {proc.returncode})"
        return None

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()


def _targets(gateway: GatewaySettings, order_at: Listener, payment_at: Listener) -> dict[str, str]:
    """The gRPC targets: one given in the environment wins; otherwise each client is aimed at
    the port its service listens on here (the settings' defaults know the default ports only).
    The gateway and the order service read the same PAYMENT_SERVICE_TARGET."""
    given = gateway.model_fields_set
    return {
        "ORDER_SERVICE_TARGET": gateway.order_service_target if "order_service_target" in given else order_at.local,
        "PAYMENT_SERVICE_TARGET": (
            gateway.payment_service_target if "payment_service_target" in given else payment_at.local
        ),
    }


def _supervise(
    stack: Stack, url: str, banner: str, targets: dict[str, str], ready_timeout: float, stopping: Callable[[], bool]
) -> int:
    """Wait for readiness (saying why it takes long, giving up after `ready_timeout`), then
    keep the three running until Ctrl-C or until one of them stops."""
    started = time.monotonic()
    reported_at, reported, reason = started, None, None
    ready = False
    while not stopping():
        stopped = stack.exited()
        if stopped:
            print(f"make run: {stopped}; stopping the others", file=sys.stderr, flush=True)
            return 1
        if not ready:
            reason = _readiness(url)
            now = time.monotonic()
            if reason is None:
                ready = True
                print(banner, flush=True)
            elif now - started > ready_timeout:
                calls = ", ".join(f"{name}={target}" for name, target in targets.items())
                print(
                    f"make run: gave up after {ready_timeout:g} s: {reason} (the gateway calls {calls}); stopping",
                    file=sys.stderr,
                    flush=True,
                )
                return 1
            elif reason != reported and now - reported_at >= REPORT_INTERVAL_S:
                print(f"make run: still waiting ({now - started:.0f} s): {reason}", file=sys.stderr, flush=True)
                reported_at, reported = now, reason
        time.sleep(POLL_INTERVAL_S)
    return 0


def main() -> int:
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    # Before anything else, so that Ctrl-C during start-up stops cleanly too.
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)

    run = load_settings(RunSettings)
    dev_key = _development_defaults(run.run_dev_key_file)
    payment = load_settings(PaymentSettings)
    order = load_settings(OrderSettings)
    gateway = load_settings(GatewaySettings)
    ready_timeout = run.run_ready_timeout_s
    payment_at = Listener("PAYMENT_SERVICE", payment.service_host, payment.service_port)
    order_at = Listener("ORDER_SERVICE", order.service_host, order.service_port)
    gateway_at = Listener("GATEWAY", gateway.gateway_host, gateway.gateway_port)
    _check_listeners([payment_at, order_at, gateway_at])
    targets = _targets(gateway, order_at, payment_at)
    url = f"http://{gateway_at.local}"
    print(
        f"make run: payment service on {payment_at.local}; order service on {order_at.local}, calling"
        f" {targets['PAYMENT_SERVICE_TARGET']}; gateway on {url}, calling {targets['ORDER_SERVICE_TARGET']}"
        f" and {targets['PAYMENT_SERVICE_TARGET']}. Waiting up to {ready_timeout:g} s for {url}/readyz",
        file=sys.stderr,
        flush=True,
    )
    stack = Stack({**os.environ, **targets})
    stack.start()
    try:
        private_webhooks = order.webhook_allow_private_networks
        banner = _banner(gateway.gateway_public_url, url, dev_key, run.run_dev_key_file, private_webhooks)
        return _supervise(stack, url, banner, targets, ready_timeout, lambda: stopping)
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())

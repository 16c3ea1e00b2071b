"""Starts the real services as processes — the same `python -m …` commands users run — on free
ports with their own temporary databases, for the integration, fault and benchmark suites."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import ClassVar, Self

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.ports import free_port as free_port  # the suites take their ports from here

ROOT = Path(__file__).resolve().parent.parent

# Every stack's accounts (docs/security.md#accounts-and-ownership). Their keys are made afresh for
# each stack.
ACCOUNT = "acct_test"
OTHER_ACCOUNT = "acct_other"
DEMO_ACCOUNT = "acct_demo"
# The suites drive far more than a shop would from one key and one address; the limits
# themselves are tested on stacks of their own (tests/integration/test_rate_limits.py).
GENEROUS_LIMITS = {"GATEWAY_RATE_LIMIT": "100000/second", "GATEWAY_AUTH_FAILURE_LIMIT": "100000/second"}


def new_key(prefix: str = "sk_test_") -> str:
    return prefix + secrets.token_urlsafe(24).replace("-", "0")


@dataclass(frozen=True)
class ApiKeys:
    """A secret and a read-only key of ACCOUNT, and a secret key of OTHER_ACCOUNT."""

    secret: str = field(default_factory=new_key)
    read_only: str = field(default_factory=lambda: new_key("rk_test_"))
    other: str = field(default_factory=new_key)

    @property
    def env(self) -> str:
        return f"{ACCOUNT}:{self.secret},{ACCOUNT}:{self.read_only},{OTHER_ACCOUNT}:{self.other}"

    @property
    def all(self) -> list[str]:
        return [self.secret, self.read_only, self.other]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@dataclass
class Service:
    module: str
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.module], cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()

    def stop(self, timeout: float = 20) -> int | None:
        """SIGTERM, then wait for a graceful exit; returns the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def kill(self) -> None:
        """SIGKILL: no chance to clean up, as in a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class Processes:
    """What a stack and a cluster share: their `services` by name, started together and stopped
    gateway first, so that no caller meets a backend that is already gone."""

    services: dict[str, Service]
    ready_timeout: ClassVar[float] = 30

    def launch(self) -> None:
        """Start every process without waiting (several clusters can then come up together)."""
        for service in self.services.values():
            service.start()

    def wait_ready(self, timeout: float) -> None:
        raise NotImplementedError

    def start(self, timeout: float | None = None) -> Self:
        self.launch()
        try:
            self.wait_ready(self.ready_timeout if timeout is None else timeout)
        except BaseException:
            self.stop()  # no process outlives a stack or cluster that never became ready
            raise
        return self

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        order = ("gateway", "order_service", "payment_service")
        for name in sorted(self.services, key=lambda n: order.index(n.split(".")[0])):
            self.services[name].stop()

    def logs(self) -> str:
        return "\n".join(f"--- {name}\n{s.log()[-3000:]}" for name, s in self.services.items())


def wait_until(
    ready: Callable[[], bool],
    deadline: float,
    services: Mapping[str, Service],
    what: str,
    logs: Callable[[], str] | None = None,
) -> None:
    """Poll `ready` until it holds; fail early, with its log, if one of `services` has exited, and
    with `logs` (by default those of `services`) at the deadline."""
    while time.monotonic() < deadline:
        if ready():
            return
        for name, service in services.items():
            if service.proc is not None and service.proc.poll() is not None:
                raise RuntimeError(f"{name} exited:\n{service.log()[-3000:]}")
        time.sleep(0.05)
    tails = logs() if logs is not None else "\n".join(f"--- {n}\n{s.log()[-3000:]}" for n, s in services.items())
    raise TimeoutError(f"{what} did not become ready:\n{tails}")


@dataclass
class Stack(Processes):
    """The three services. `env` adds or overrides variables for all of them;
    `service_env` for one (keyed by module name)."""

    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    service_env: dict[str, dict[str, str]] = field(default_factory=dict)
    keys: ApiKeys = field(default_factory=ApiKeys)

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        # What a test client sends: the secret key of ACCOUNT.
        self.headers = bearer(self.keys.secret)
        self.gateway_port, self.order_port, self.payment_port = free_port(), free_port(), free_port()
        # The services' Prometheus ports: free ones too, so that stacks never collide on 9151/9152.
        self.order_metrics_port, self.payment_metrics_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.gateway_port}"
        self.order_target = f"127.0.0.1:{self.order_port}"
        self.payment_target = f"127.0.0.1:{self.payment_port}"
        base = {
            **os.environ,
            "LOG_FORMAT": "json",
            "GATEWAY_PORT": str(self.gateway_port),
            "GATEWAY_PUBLIC_URL": self.url,
            "ORDER_SERVICE_PORT": str(self.order_port),
            "PAYMENT_SERVICE_PORT": str(self.payment_port),
            "ORDER_METRICS_PORT": str(self.order_metrics_port),
            "PAYMENT_METRICS_PORT": str(self.payment_metrics_port),
            "ORDER_SERVICE_TARGET": self.order_target,
            "PAYMENT_SERVICE_TARGET": self.payment_target,
            "ORDER_DATABASE_URL": f"sqlite:///{self.workdir}/orders.db",
            "PAYMENT_DATABASE_URL": f"sqlite:///{self.workdir}/payments.db",
            "GATEWAY_API_KEYS": self.keys.env,
            "GATEWAY_DEMO_ACCOUNT": DEMO_ACCOUNT,
            **GENEROUS_LIMITS,
            **self.env,
        }
        self.services = {
            name: Service(name, {**base, **self.service_env.get(name, {})}, self.workdir / f"{name}.log")
            for name in ("payment_service", "order_service", "gateway")
        }

    @property
    def payment(self) -> Service:
        return self.services["payment_service"]

    @property
    def order(self) -> Service:
        return self.services["order_service"]

    @property
    def gateway(self) -> Service:
        return self.services["gateway"]

    def wait_ready(self, timeout: float = 30) -> None:
        """Poll /readyz (both services SERVING) until it says 200, or fail with the logs."""
        wait_until(partial(gateway_ready, self.url), time.monotonic() + timeout, self.services, "the stack")

    def wait_serving(self, target: str, timeout: float = 30) -> None:
        """Until the gRPC service at `target` answers its health check with SERVING."""
        wait_until(partial(grpc_serving, target), time.monotonic() + timeout, {}, target, self.logs)

    def client(self) -> httpx.AsyncClient:
        """An HTTP client of the gateway with the secret key of ACCOUNT (open it with `async with`)."""
        return httpx.AsyncClient(base_url=self.url, headers=self.headers, timeout=10)

    def restart(self, name: str) -> None:
        service = self.services[name]
        service.stop()
        service.start()
        self.wait_ready()

    def leaked_lines(self, secrets_: Iterable[str] = ()) -> list[str]:
        """Every log line of the three services that holds one of the stack's API keys, one of
        `secrets_`, or anything shaped like a client secret (`…_secret_…`):
        docs/security.md#secrets-never-leak says none may."""
        return leaked_lines(self.services.values(), [*self.keys.all, *secrets_])


CLIENT_SECRET_MARK = "_secret_"


def leaked_lines(services: Iterable[Service], secrets_: Iterable[str]) -> list[str]:
    wanted = [s for s in secrets_ if s]
    found = []
    for service in services:
        for line in service.log().splitlines():
            if CLIENT_SECRET_MARK in line or any(secret in line for secret in wanted):
                found.append(f"{service.module}: {line[:300]}")
    return found


def ipv4_target(ports: list[int]) -> str:
    """A gRPC target naming every replica: calls go round-robin over them."""
    return "ipv4:" + ",".join(f"127.0.0.1:{port}" for port in ports)


@dataclass
class Cluster(Processes):
    """Several replicas of every service on PostgreSQL
    (docs/operations.md#several-replicas-on-postgresql): `replicas` payment services, `replicas`
    order services and `gateways` gateways, each gRPC client aimed at every replica of its target.
    All of them are started at the same instant (`start`)."""

    workdir: Path
    order_database_url: str
    payment_database_url: str
    replicas: int = 2
    gateways: int = 2
    env: dict[str, str] = field(default_factory=dict)
    keys: ApiKeys = field(default_factory=ApiKeys)
    ready_timeout: ClassVar[float] = 60

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.headers = bearer(self.keys.secret)
        self.payment_ports = [free_port() for _ in range(self.replicas)]
        self.order_ports = [free_port() for _ in range(self.replicas)]
        self.gateway_ports = [free_port() for _ in range(self.gateways)]
        self.urls = [f"http://127.0.0.1:{port}" for port in self.gateway_ports]
        self.order_targets = [f"127.0.0.1:{port}" for port in self.order_ports]
        self.payment_targets = [f"127.0.0.1:{port}" for port in self.payment_ports]
        base = {
            **os.environ,
            "LOG_FORMAT": "json",
            "ORDER_DATABASE_URL": self.order_database_url,
            "PAYMENT_DATABASE_URL": self.payment_database_url,
            "ORDER_SERVICE_TARGET": ipv4_target(self.order_ports),
            "PAYMENT_SERVICE_TARGET": ipv4_target(self.payment_ports),
            "GATEWAY_API_KEYS": self.keys.env,
            "GATEWAY_DEMO_ACCOUNT": DEMO_ACCOUNT,
            **GENEROUS_LIMITS,
            **self.env,
        }
        self.services: dict[str, Service] = {}
        # How to tell that each one serves: its gRPC health check, or the gateway's /readyz.
        self._ready: dict[str, Callable[[], bool]] = {}
        for module, ports, variable in (
            ("payment_service", self.payment_ports, "PAYMENT_SERVICE_PORT"),
            ("order_service", self.order_ports, "ORDER_SERVICE_PORT"),
            ("gateway", self.gateway_ports, "GATEWAY_PORT"),
        ):
            for number, port in enumerate(ports, start=1):
                env = {**base, variable: str(port)}
                if module != "gateway":  # every replica its own Prometheus port
                    env[f"{module.split('_')[0].upper()}_METRICS_PORT"] = str(free_port())
                if module == "gateway":
                    env["GATEWAY_PUBLIC_URL"] = f"http://127.0.0.1:{port}"
                name = f"{module}.{number}"
                self.services[name] = Service(module, env, self.workdir / f"{name}.log")
                check = gateway_ready if module == "gateway" else grpc_serving
                address = f"http://127.0.0.1:{port}" if module == "gateway" else f"127.0.0.1:{port}"
                self._ready[name] = partial(check, address)

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        for target in self.order_targets + self.payment_targets:
            wait_until(partial(grpc_serving, target), deadline, self.services, f"{target} SERVING")
        for url in self.urls:
            wait_until(partial(gateway_ready, url), deadline, self.services, f"{url}/readyz")

    def wait_replica(self, name: str, timeout: float = 60) -> None:
        """Until the replica `name` serves (after `services[name].start()`), or fail with the logs."""
        wait_until(self._ready[name], time.monotonic() + timeout, self.services, name)


def grpc_serving(target: str) -> bool:
    with grpc.insecure_channel(target) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
        except grpc.RpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def gateway_ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False

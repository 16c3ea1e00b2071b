"""Driving `docker-compose` (1.29) or `docker compose` (v2) for the end-to-end suite: one project
with a name of its own, built from the local base image where there is one, started (scaled, if
asked), waited on until every container is healthy and every one-shot container has exited 0, and
removed with its volumes."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.harness import ROOT, bearer, free_port, new_key

COMPOSE_FILE = ROOT / "docker-compose.yml"
DEBUG_FILE = ROOT / "docker-compose.debug.yml"
POSTGRES_FILE = ROOT / "docker-compose.postgres.yml"
SERVICES = ("payment_service", "order_service", "gateway")
# The base image that ../shared/tools/docker-ready.sh (and .ci/docker-ready.sh) builds where no
# image registry can be reached.
LOCAL_BASE_IMAGE = "local/python:3.11-bookworm"


class ComposeError(RuntimeError):
    pass


def _works(command: list[str]) -> bool:
    try:
        return subprocess.run(command, capture_output=True, timeout=30, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def docker_engine_reachable() -> bool:
    return shutil.which("docker") is not None and _works(["docker", "info"])


def compose_commands() -> dict[str, list[str]]:
    """Every compose implementation on this machine: `docker-compose` (1.29 here; a v2
    standalone binary works too) and the v2 CLI plugin `docker compose`."""
    found: dict[str, list[str]] = {}
    if shutil.which("docker-compose") and _works(["docker-compose", "version"]):
        found["docker-compose"] = ["docker-compose"]
    if shutil.which("docker") and _works(["docker", "compose", "version"]):
        found["docker compose"] = ["docker", "compose"]
    return found


def compose_command() -> list[str] | None:
    """The one the suite drives: $SHOP_COMPOSE if set (e.g. "docker compose"), else
    `docker-compose`, else `docker compose`."""
    if os.environ.get("SHOP_COMPOSE"):
        return shlex.split(os.environ["SHOP_COMPOSE"])
    commands = compose_commands()
    return commands.get("docker-compose") or commands.get("docker compose")


def base_image() -> str | None:
    """$PYTHON_IMAGE if set; else the local base image if this machine has one (no registry is
    reachable where it exists); else None, and compose's default (python:3.12-slim) applies."""
    if os.environ.get("PYTHON_IMAGE"):
        return os.environ["PYTHON_IMAGE"]
    if _works(["docker", "image", "inspect", LOCAL_BASE_IMAGE]):
        return LOCAL_BASE_IMAGE
    return None


@dataclass
class ComposeStack:
    """The compose file plus the debug override (gRPC ports published), under a project name of
    its own and on free host ports, so that it clashes neither with `make run` nor with a
    `docker-compose up` of the same checkout."""

    command: list[str]
    # Where `down` keeps the containers' logs first (appended, one block per `down`).
    log_path: Path | None = None
    project: str = field(default_factory=lambda: f"shope2e{uuid.uuid4().hex[:8]}")
    files: tuple[Path, ...] = (COMPOSE_FILE, DEBUG_FILE)
    # Services that run once and exit (the certificates, a migration): done when they exited 0.
    one_shot: tuple[str, ...] = ("certs",)
    # Containers stopped on purpose (`stop_container`), which wait_healthy leaves out.
    stopped: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.gateway_port = free_port()
        self.order_port = free_port()
        self.payment_port = free_port()
        self.url = f"http://127.0.0.1:{self.gateway_port}"
        # A key of this project's own, in place of compose's development default.
        self.api_key = new_key()
        self.headers = bearer(self.api_key)
        self.env = {
            **os.environ,
            "GATEWAY_API_KEYS": f"acct_e2e:{self.api_key}",
            # SHOP_E2E_IMAGE: a tag of its own, for two checkouts that run this suite at once.
            "SHOP_IMAGE": os.environ.get("SHOP_E2E_IMAGE", "shop-grpc:e2e"),
            "GATEWAY_PUBLISHED_PORT": str(self.gateway_port),
            "GATEWAY_PUBLIC_URL": self.url,
            "ORDER_SERVICE_PUBLISHED_PORT": str(self.order_port),
            "PAYMENT_SERVICE_PUBLISHED_PORT": str(self.payment_port),
        }
        image = base_image()
        if image:
            self.env["PYTHON_IMAGE"] = image

    def run(self, *args: str, timeout: float = 120, check: bool = True) -> str:
        files = [option for path in self.files for option in ("-f", str(path))]
        argv = [*self.command, "-p", self.project, *files, *args]
        try:
            done = subprocess.run(
                argv, cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise ComposeError(f"`{shlex.join(argv)}` took over {timeout} s") from exc
        if check and done.returncode != 0:
            raise ComposeError(f"`{shlex.join(argv)}` exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def build(self) -> None:
        self.run("build", timeout=900)

    def up(self, *options: str) -> None:
        """`up -d` with `options` (`--scale order_service=2`); it returns once the services that
        others depend on are healthy (or done) and every container has started."""
        self.run("up", "-d", *options, timeout=180)

    def containers(self) -> dict[str, str]:
        """Container id by service."""
        found = {service: self.run("ps", "-q", service).strip() for service in SERVICES}
        missing = [service for service, container in found.items() if not container]
        if missing:
            raise ComposeError(f"no container for {', '.join(missing)}")
        return found

    def replicas(self) -> dict[str, list[str]]:
        """Container ids by service, every replica in compose's numbering, one-shot and stopped
        containers included. Read from the containers' project labels, which 1.29 and v2 both
        set, since their own `ps` differ on stopped and scaled containers."""
        fields = '{{.Label "com.docker.compose.service"}} {{.Label "com.docker.compose.container-number"}} {{.ID}}'
        label = f"label=com.docker.compose.project={self.project}"
        reply = subprocess.run(
            ["docker", "ps", "--all", "--filter", label, "--format", fields],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        found: dict[str, list[str]] = {}
        for service, _, container in sorted((s, int(n), c) for s, n, c in map(str.split, reply.stdout.splitlines())):
            found.setdefault(service, []).append(container)
        return found

    def stop_container(self, container: str) -> None:
        """Stop one replica (SIGTERM, then the grace period); compose's restart policy leaves a
        container stopped this way alone."""
        subprocess.run(["docker", "stop", "--time", "15", container], capture_output=True, timeout=60, check=True)
        self.stopped.add(container)

    def states(self, containers: dict[str, str]) -> dict[str, dict[str, Any]]:
        """`docker inspect`'s State of each container (Status, Health, RestartCount, …)."""
        reply = subprocess.run(
            ["docker", "inspect", "--format", "{{json .State}}", *containers.values()],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return dict(zip(containers, map(json.loads, reply.stdout.splitlines()), strict=True))

    def wait_healthy(self, timeout: float = 120) -> float:
        """Until every container says healthy, and every one-shot container has exited 0;
        returns the seconds waited. A container that exits (or a one-shot one that fails) or
        restarts on the way fails at once, with the logs."""
        started = time.monotonic()
        self.containers()  # each of the three services has a container
        health: dict[str, str] = {}
        while time.monotonic() < started + timeout:
            containers = {
                f"{service}#{number}": container
                for service, ids in self.replicas().items()
                for number, container in enumerate(ids, 1)
                if container not in self.stopped
            }
            states = self.states(containers)
            for name, state in list(states.items()):
                if name.split("#")[0] in self.one_shot and state["Status"] == "exited":
                    if state["ExitCode"] != 0:
                        raise ComposeError(f"{name} exited {state['ExitCode']}:\n{self.logs()}")
                    del states[name]
                elif state["Status"] != "running" or state.get("Restarting"):
                    raise ComposeError(f"{name} is {state['Status']}:\n{self.logs()}")
            health = {service: (state.get("Health") or {}).get("Status", "none") for service, state in states.items()}
            if all(status == "healthy" for status in health.values()):
                return time.monotonic() - started
            time.sleep(0.25)
        raise ComposeError(f"not healthy within {timeout} s: {health}\n{self.logs()}")

    def restart(self, service: str) -> None:
        self.run("restart", service)

    def down(self, *, volumes: bool) -> None:
        if self.log_path is not None:
            with contextlib.suppress(ComposeError):  # the logs must not keep the stack up
                self.save_logs(self.log_path)
        self.run("down", "--remove-orphans", "--timeout", "15", *(["-v"] if volumes else []), timeout=180)

    def logs(self, tail: int = 60) -> str:
        return self.run("logs", "--no-color", "--tail", str(tail), check=False, timeout=60)

    def save_logs(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        logs = self.run("logs", "--no-color", "--timestamps", check=False, timeout=60)
        with path.open("a") as file:
            file.write(f"=== {self.project} at {time.strftime('%H:%M:%S')}\n{logs}")

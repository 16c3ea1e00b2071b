"""What both gRPC services are made of, once: their settings, their server, `python -m <service>`.

A service's own `server.py` builds its parts (a database, a servicer, whatever runs beside it)
and hands them to `build_service`; `service_main` is its `python -m` entry point:

    python -m order_service [serve|migrate]

`serve` (the default) migrates the database to the newest schema, then serves until SIGTERM or
Ctrl-C; `migrate` only migrates and exits, for a deploy step that runs before the replicas.
Anything that stops the start-up — a bad setting, a database that cannot be reached, a schema
newer than this release — ends the process with one line, not a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc
import uvloop
from grpc_health.v1._async import HealthServicer
from pydantic import Field
from sqlalchemy.exc import DBAPIError

from common import authz
from common.authz import CallerPolicySettings
from common.db import Database, DatabaseUrl, open_database
from common.errors import Unavailable
from common.grpc_server import create_grpc_server, run_until_signalled
from common.health_port import HealthPort
from common.logs import configure_logging
from common.migrations import History, SchemaError, upgrade
from common.observed_db import ObservedDatabase, observe
from common.service_metrics import serve_metrics
from common.settings import CommonSettings, load_settings
from common.tls import TlsSettings
from common.tracing import configure_tracing

log = logging.getLogger(__name__)


class ServiceSettings(CommonSettings, TlsSettings, CallerPolicySettings):
    """What every gRPC service reads, under its own prefix (a subclass's `env_prefix`: ORDER_,
    PAYMENT_): `<PREFIX>SERVICE_HOST`, `<PREFIX>SERVICE_PORT`, and so on."""

    service_host: str = "127.0.0.1"
    service_port: int = Field(ge=0, le=65535)
    # Prometheus text on the service's host at this port (0: not served).
    metrics_port: int = Field(ge=0, le=65535)
    # The plaintext health-only port, for probes without a certificate (common/health_port.py).
    health_port: int | None = Field(None, ge=0, le=65535)
    database_url: DatabaseUrl
    # PostgreSQL connections per replica (size max_connections for every replica's pool).
    database_pool_size: int = Field(10, ge=1, le=500)

    def variable(self, name: str) -> str:
        """The environment variable of a field (`metrics_port` → ORDER_METRICS_PORT)."""
        return (str(self.model_config.get("env_prefix", "")) + name).upper()


S = TypeVar("S", bound=ServiceSettings)


async def open_service_database(history: History, settings: ServiceSettings) -> ObservedDatabase:
    """The service's database, migrated to the newest schema, opened, timed and traced."""
    await upgrade(history, settings.database_url)
    db = observe(open_database(settings.database_url, pool_size=settings.database_pool_size))
    await db.start()
    return db


@dataclass
class Service:
    """A built service, not yet serving: its gRPC server (servicer, health, reflection), the port
    it listens on, its health-only port, and what runs beside the servicer."""

    settings: ServiceSettings
    names: list[str]
    server: grpc.aio.Server
    health: HealthServicer
    port: int
    db: Database
    health_port: HealthPort
    # Started once the server is (the order service's reconciler).
    on_start: Sequence[Callable[[], None]] = ()
    # At shutdown, before the grace period: end the calls that would never end (watch streams).
    on_draining: Sequence[Callable[[], None]] = ()
    # After the server stopped, before the database closes.
    on_close: Sequence[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def close(self) -> None:
        self._draining()  # again, for a service closed without having served (idempotent)
        await self.health_port.stop()
        for close in self.on_close:
            await close()
        await self.db.close()

    def _draining(self) -> None:
        for hook in self.on_draining:
            hook()


def build_service(
    settings: ServiceSettings,
    db: Database,
    names: list[str],
    register: Callable[[grpc.aio.Server], None],
    **hooks: Any,
) -> Service:
    """The gRPC server with the servicer `register` adds, on the settings' host and port, with
    mutual TLS and the caller policy when they are set; `hooks` are `Service`'s on_… lists."""
    tls = settings.grpc_tls
    server, health, port = create_grpc_server(
        names,
        register,
        settings.service_host,
        settings.service_port,
        tls=tls,
        hooks=authz.hooks(settings.caller_policy, tls is not None),
    )
    health_port = HealthPort.open(health, settings.service_host, settings.health_port)
    return Service(settings, names, server, health, port, db, health_port, **hooks)


async def serve(service: Service) -> None:
    """Serve until SIGTERM or Ctrl-C, then shut down gracefully (common/grpc_server.py)."""
    settings = service.settings
    metrics = serve_metrics(settings.service_host, settings.metrics_port, settings.variable("metrics_port"))
    log.info("listening", extra={"port": service.port, "metrics_port": metrics})
    for start in service.on_start:
        start()
    await service.health_port.start()
    await run_until_signalled(
        service.server,
        service.health,
        service.names,
        on_stop=service.close,
        on_draining=service._draining,
        database=service.db,
    )


def service_main(
    name: str,
    settings_class: type[S],
    history: History,
    create_service: Callable[[S], Coroutine[Any, Any, Service]],
) -> None:
    parser = argparse.ArgumentParser(prog=f"python -m {name}", description=f"Run the {name}.")
    parser.add_argument(
        "command",
        nargs="?",
        default="serve",
        choices=("serve", "migrate"),
        help="serve (default): migrate, then serve; migrate: bring the schema to the newest version and exit",
    )
    command = parser.parse_args().command
    settings = load_settings(settings_class)
    configure_logging(name, settings.log_level, settings.log_format)
    if command == "serve":
        configure_tracing(name)
    try:
        if command == "migrate":
            revision = asyncio.run(upgrade(history, settings.database_url))
            logging.getLogger(name).info("schema migrated", extra={"revision": revision})
        else:
            # uvloop, as for the gateway: grpc.aio runs on it, and the loop's own work per call
            # (wake-ups, callbacks, futures) costs less.
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                runner.run(_serve(create_service, settings))
    except SchemaError as exc:
        raise SystemExit(f"{name}: {exc}") from None
    except (Unavailable, DBAPIError, OSError) as exc:
        raise SystemExit(f"{name}: cannot use the database: {_first_line(exc)}") from None


async def _serve(create_service: Callable[[S], Coroutine[Any, Any, Service]], settings: S) -> None:
    await serve(await create_service(settings))


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

"""Health that follows the database (docs/database-failures.md#what-a-client-sees).

A replica that cannot reach its database can do nothing useful, so it says so: every
PROBE_INTERVAL_S it asks the database whether it can be used (`Database.check`: `SELECT 1` on a
connection of its own for PostgreSQL, the file for SQLite), and sets its gRPC health from the
answer — the overall status ("") and every service's. That one HealthServicer is what the
gateway's /readyz, Kubernetes' native gRPC probe and the plaintext health port
(common/health_port.py) all read, so each reports NOT_SERVING within
PROBE_INTERVAL_S + PROBE_TIMEOUT_S + the reconnect's half second (2 s) of the database going
away, and SERVING within PROBE_INTERVAL_S and a connection of its return.

`db_up` (1 or 0) on the metrics port says the same to Prometheus.

A replica without its database is not ready, but restarting it would not bring the database
back (and a replica cannot even start without it): so one health entry, LIVENESS, does not
follow the database — SERVING while the process runs, NOT_SERVING from SIGTERM on — for
liveness probes (deploy/kubernetes: `grpc: {port, service: liveness}`).

Shutdown wins: after SIGTERM the servicer ignores every change (grpc's
`enter_graceful_shutdown`), so a probe still running cannot turn NOT_SERVING back; the probe is
stopped before that anyway.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from grpc_health.v1 import health_pb2
from grpc_health.v1._async import HealthServicer
from prometheus_client import Gauge

from common.background import BackgroundLoop
from common.db import Database
from common.errors import Unavailable

log = logging.getLogger(__name__)

# The grpc.health.v1 service name that liveness probes ask for (see the module docstring).
LIVENESS = "liveness"
PROBE_INTERVAL_S = 0.5
# A database that takes longer than this for `SELECT 1` is as good as gone.
PROBE_TIMEOUT_S = 1.0

DB_UP = Gauge("db_up", "1 while the service's database answers its health probe, else 0")

_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class DatabaseHealth(BackgroundLoop):
    """Probes `db` and sets `health` for "" and `service_names` (see the module docstring).
    Started once the server says SERVING; stopped at shutdown."""

    task_name = "database health probe"

    def __init__(
        self,
        db: Database,
        health: HealthServicer,
        service_names: Iterable[str],
        interval_s: float = PROBE_INTERVAL_S,
        timeout_s: float = PROBE_TIMEOUT_S,
    ) -> None:
        self.db = db
        self.health = health
        self.names = ["", *service_names]
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.serving = True  # what the server said when it started

    def start(self) -> None:
        DB_UP.set(1)
        super().start()

    async def probe_once(self) -> bool:
        """Ask the database once; set the health if the answer changed it. True: it answered."""
        try:
            await self.db.check(self.timeout_s)
        except Unavailable as exc:
            error = str(exc.__cause__ or exc)
            up = False
        else:
            up, error = True, ""
        DB_UP.set(1 if up else 0)
        if up != self.serving:
            self.serving = up
            for name in self.names:
                await self.health.set(name, _SERVING if up else _NOT_SERVING)
            if up:
                log.info("the database answers again; health SERVING")
            else:
                log.warning("the database does not answer; health NOT_SERVING", extra={"error": error[:200]})
        return up

    async def _run(self) -> None:
        while True:
            try:
                await self.probe_once()
            except Exception:
                log.exception("database health probe failed")
            await asyncio.sleep(self.interval_s)

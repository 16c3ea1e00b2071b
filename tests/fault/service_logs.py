"""What the fault runs read from the services' JSON logs: the calls a restarted service served,
the gRPC calls answered with another status than OK, and the error lines."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping
from contextlib import suppress
from datetime import datetime
from typing import Any

from tests.harness import Service


def wall(ts: str) -> float:
    """A log line's `ts` (`2026-11-24T21:03:04.512Z`) as a time.time()."""
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def served_since(service: Service, offset: int) -> tuple[Counter[str], str | None]:
    """The RPCs (a gateway: the requests) `service` logged after byte `offset` of its log, by
    method (route), and when it logged the first of them (its log's `ts`)."""
    with service.log_path.open("rb") as log:
        log.seek(offset)
        lines = log.read().decode(errors="replace").splitlines()
    served: Counter[str] = Counter()
    first: str | None = None
    for line in lines:
        with suppress(ValueError):
            entry = json.loads(line)
            if not isinstance(entry, dict):
                continue
            if entry.get("msg") == "rpc" and "/grpc." not in str(entry.get("rpc")):
                served[str(entry["rpc"]).rsplit("/", 1)[-1]] += 1
            elif entry.get("msg") == "request" and str(entry.get("route", "")).startswith("/v1/"):
                served[f"{entry.get('method')} {entry.get('route')}"] += 1
            else:
                continue
            first = first or str(entry.get("ts"))
    return served, first


def rpc_failures(services: Mapping[str, Service]) -> dict[str, dict[str, int]]:
    """Per service, the gRPC calls it answered with another status than OK, as its log says
    (`CreateOrder ABORTED`: n): what the services told each other and the gateways, behind
    what the clients saw. A killed process logs none of the calls it was cut off in."""

    def failed_call(entry: dict[str, Any]) -> str | None:
        if entry.get("msg") == "rpc" and entry.get("status") != "OK":
            return f"{str(entry.get('rpc')).rsplit('/', 1)[-1]} {entry.get('status')}"
        return None

    return _count_log_lines(services, failed_call)


def log_errors(services: Mapping[str, Service]) -> dict[str, dict[str, int]]:
    """Lines at level error or above in each service's log, by the first line of the message
    (a figure to read, not a rule: a killed process logs nothing, a survivor may log what
    it could not do for a while)."""

    def error(entry: dict[str, Any]) -> str | None:
        if entry.get("level") in ("error", "critical"):
            return str(entry.get("msg", "")).splitlines()[0][:160]
        return None

    return _count_log_lines(services, error)


def _count_log_lines(
    services: Mapping[str, Service], kind: Callable[[dict[str, Any]], str | None]
) -> dict[str, dict[str, int]]:
    """Per service, how many of its JSON log lines are of each `kind` (None: not counted)."""
    found: dict[str, dict[str, int]] = {}
    for name, service in services.items():
        seen: Counter[str] = Counter()
        for line in service.log().splitlines():
            with suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict) and (counted := kind(entry)) is not None:
                    seen[counted] += 1
        if seen:
            found[name] = dict(seen.most_common())
    return found

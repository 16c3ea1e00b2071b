"""`python -m <service> [serve|migrate]`: the one entry point both gRPC services share.

`serve` (the default) migrates the database to the newest schema, then serves until SIGTERM or
Ctrl-C; `migrate` only migrates and exits, for a deploy step that runs before the replicas.
Anything that stops the start-up — a bad setting, a database that cannot be reached, a schema
newer than this release — ends the process with one line, not a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import uvloop
from sqlalchemy.exc import DBAPIError

from common.errors import Unavailable
from common.logs import configure_logging
from common.migrations import SchemaError
from common.settings import CommonSettings, load_settings
from common.tracing import configure_tracing

S = TypeVar("S", bound=CommonSettings)


def service_main(
    name: str,
    settings_class: type[S],
    migrate: Callable[[S], Coroutine[Any, Any, str]],
    serve: Callable[[S], Coroutine[Any, Any, None]],
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
    log = logging.getLogger(name)
    try:
        if command == "migrate":
            revision = asyncio.run(migrate(settings))
            log.info("schema migrated", extra={"revision": revision})
        else:
            # uvloop, as for the gateway: grpc.aio runs on it, and the loop's own work per call
            # (wake-ups, callbacks, futures) costs less.
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                runner.run(serve(settings))
    except SchemaError as exc:
        raise SystemExit(f"{name}: {exc}") from None
    except (Unavailable, DBAPIError, OSError) as exc:
        raise SystemExit(f"{name}: cannot use the database: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

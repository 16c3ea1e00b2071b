"""`python -m bench.granian_gateway`: the benchmark's gateway (bench/bare_gateway.py: the gateway's
own application with the bare route beside it, the same settings from the same environment)
served by granian instead of uvicorn — for the server comparison of `make bench` only; the
product runs uvicorn (gateway/__main__.py).

Configured as close to the product's uvicorn as granian allows: one worker, the ASGI interface
(with lifespan, which opens the gRPC channels), uvloop, HTTP/1.1 only, no access log. Granian
always serves from a worker process under a supervisor; the benchmark counts the CPU of both.
"""

from __future__ import annotations

from fastapi import FastAPI
from granian import Granian
from granian.constants import HTTPModes, Interfaces, Loops

from bench.bare_gateway import bench_app
from common.logs import configure_logging
from common.settings import load_settings
from gateway.settings import GatewaySettings


def app() -> FastAPI:
    """The factory granian's worker calls: settings and logging as `python -m gateway` has them."""
    settings = load_settings(GatewaySettings)
    configure_logging("gateway", settings.log_level, settings.log_format)
    return bench_app(settings)


def main() -> None:
    settings = load_settings(GatewaySettings)
    Granian(
        "bench.granian_gateway:app",
        address=settings.gateway_host,
        port=settings.gateway_port,
        interface=Interfaces.ASGI,
        factory=True,
        workers=1,
        loop=Loops.uvloop,
        http=HTTPModes.http1,
        log_access=False,
    ).serve()


if __name__ == "__main__":
    main()

"""`python -m bench.hop_server grpc|http PORT`: one end of the hop benchmark, in its own process.

grpc: the payment service's servicer (and the 100-item CreateOrder) on the services' own server
and event loop. http: the equivalent FastAPI endpoints on uvicorn with uvloop and httptools, as
the gateway runs. Both keep their payments in a throw-away SQLite file, and log warnings only,
so that neither pays for a line per call.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path
from typing import Any

import grpc
import uvicorn
import uvloop

from bench.hop_app import HopOrderServicer, create_json_app
from common.logs import configure_logging
from common.service import build_service, serve
from payment_service.server import SERVICE_NAME, open_payments
from payment_service.servicer import PaymentServicer
from payment_service.settings import PaymentSettings
from shop.order.v1 import order_pb2, order_pb2_grpc
from shop.payment.v1 import payment_pb2_grpc

HOST = "127.0.0.1"
SERVICES = [SERVICE_NAME, order_pb2.DESCRIPTOR.services_by_name["OrderService"].full_name]


def settings(port: int, folder: Path) -> PaymentSettings:
    values: dict[str, Any] = {
        "service_host": HOST,
        "service_port": port,
        "metrics_port": 0,
        "database_url": f"sqlite:///{folder}/payments.db",
    }
    return PaymentSettings(**values)


async def serve_grpc(port: int, folder: Path) -> None:
    payments = await open_payments(settings(port, folder))
    charges = PaymentServicer(payments)
    # Only CreateOrder is served; the generated base class answers UNIMPLEMENTED for the rest.
    orders = HopOrderServicer(charges)  # type: ignore[abstract]

    def register(server: grpc.aio.Server) -> None:
        payment_pb2_grpc.add_PaymentServiceServicer_to_server(charges, server)
        order_pb2_grpc.add_OrderServiceServicer_to_server(orders, server)

    await serve(build_service(settings(port, folder), payments.db, SERVICES, register))


def serve_http(port: int, folder: Path) -> None:
    # Opened before uvicorn starts its loop: SQLite's connections are not tied to one.
    app = create_json_app(asyncio.run(open_payments(settings(0, folder))))
    uvicorn.run(
        app,
        host=HOST,
        port=port,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        log_level="warning",
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.hop_server")
    parser.add_argument("transport", choices=["grpc", "http"])
    parser.add_argument("port", type=int)
    args = parser.parse_args()
    configure_logging("bench_hop_server", "WARNING", "json")
    with tempfile.TemporaryDirectory(prefix="hop-") as folder:
        if args.transport == "grpc":
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                runner.run(serve_grpc(args.port, Path(folder)))
        else:
            serve_http(args.port, Path(folder))


if __name__ == "__main__":
    main()

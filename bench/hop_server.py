"""`python -m bench.hop_server grpc|http PORT`: one end of the hop benchmark, in its own process.

grpc: the payment service's servicer (and the 100-item CreateOrder) on the services' own server
factory and event loop. http: the equivalent FastAPI endpoints on uvicorn with uvloop and
httptools, as the gateway runs. Both log warnings only, so neither pays for a line per call.
"""

from __future__ import annotations

import argparse
import asyncio

import grpc
import uvicorn

from bench.hop_app import HopOrderServicer, create_json_app, new_payments
from common.grpc_server import create_grpc_server, run_until_signalled
from common.logs import configure_logging
from shop.order.v1 import order_pb2, order_pb2_grpc
from shop.payment.v1 import payment_pb2, payment_pb2_grpc

HOST = "127.0.0.1"
SERVICES = [
    payment_pb2.DESCRIPTOR.services_by_name["PaymentService"].full_name,
    order_pb2.DESCRIPTOR.services_by_name["OrderService"].full_name,
]


async def serve_grpc(port: int) -> None:
    payments = new_payments()
    # Only CreateOrder is served; the generated base class answers UNIMPLEMENTED for the rest.
    orders = HopOrderServicer(payments)  # type: ignore[abstract]

    def register(server: grpc.aio.Server) -> None:
        payment_pb2_grpc.add_PaymentServiceServicer_to_server(payments, server)
        order_pb2_grpc.add_OrderServiceServicer_to_server(orders, server)

    server, health, _ = create_grpc_server(SERVICES, register, HOST, port)
    await run_until_signalled(server, health, SERVICES)


def serve_http(port: int) -> None:
    uvicorn.run(
        create_json_app(new_payments()),
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
    if args.transport == "grpc":
        asyncio.run(serve_grpc(args.port))
    else:
        serve_http(args.port)


if __name__ == "__main__":
    main()

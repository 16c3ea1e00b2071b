"""mTLS between the services (docs/security.md#mtls-between-the-services), with certificates made
here (a CA of this test, and another CA that nobody trusts): the stack works end to end over mutual
TLS; a plaintext call and a call with another CA's certificate are refused at the handshake; a
certificate of the right CA but the wrong identity is PERMISSION_DENIED, for a method and for
sending a scope; the plaintext health-only port answers the health check and nothing else."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from common.caller import ACCOUNT_KEY
from common.devcerts import Authority
from shop.order.v1 import order_pb2, order_pb2_grpc
from shop.payment.v1 import payment_pb2, payment_pb2_grpc
from tests.harness import ACCOUNT, Stack, free_port
from tests.integration.helpers import order_body
from tests.integration.push_clients import sse

# What compose configures, plus `reporting`: allowed to call the order service, not to act for
# an account.
ORDER_ALLOW = "*:gateway,reporting"
PAYMENT_ALLOW = (
    "Charge,Refund,ConfirmPayment,CancelPayment:order-service;GetPayment:order-service,gateway;*:order-service"
)
# The deadline of a call that must be refused: a refused handshake is UNAVAILABLE in
# milliseconds, and a busy machine must not turn it into DEADLINE_EXCEEDED.
REFUSAL_S = 15


@dataclass
class Pki:
    directory: Path
    authority: Authority

    def issue(self, identity: str, names: tuple[str, ...] = ()) -> tuple[Path, Path]:
        issued = self.authority.issue(identity, names)
        cert, key = self.directory / f"{identity}.pem", self.directory / f"{identity}-key.pem"
        cert.write_bytes(issued.cert_pem)
        key.write_bytes(issued.key_pem)
        return cert, key

    @property
    def ca(self) -> Path:
        path = self.directory / "ca.pem"
        path.write_bytes(self.authority.cert_pem)
        return path

    def env(self, identity: str) -> dict[str, str]:
        cert, key = self.issue(identity, ("localhost",))
        return {"GRPC_TLS_CA": str(self.ca), "GRPC_TLS_CERT": str(cert), "GRPC_TLS_KEY": str(key)}

    def credentials(self, identity: str, trusted: Authority | None = None) -> grpc.ChannelCredentials:
        cert, key = self.issue(identity)
        root = (trusted or self.authority).cert_pem
        return grpc.ssl_channel_credentials(root, key.read_bytes(), cert.read_bytes())


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"), Authority("test CA"))


@pytest.fixture(scope="module")
def stranger(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """Another CA: its certificates carry the right names, and nobody trusts them."""
    return Pki(tmp_path_factory.mktemp("stranger"), Authority("someone else's CA"))


@pytest.fixture(scope="module")
def tls_stack(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[Stack]:
    order_health, payment_health = free_port(), free_port()
    stack = Stack(
        tmp_path_factory.mktemp("mtls"),
        service_env={
            "gateway": pki.env("gateway"),
            "order_service": {
                **pki.env("order-service"),
                "GRPC_TLS_ALLOW": ORDER_ALLOW,
                "GRPC_TLS_SCOPE_SENDERS": "gateway",
                "ORDER_HEALTH_PORT": str(order_health),
            },
            "payment_service": {
                **pki.env("payment-service"),
                "GRPC_TLS_ALLOW": PAYMENT_ALLOW,
                "GRPC_TLS_SCOPE_SENDERS": "gateway,order-service",
                "PAYMENT_HEALTH_PORT": str(payment_health),
            },
        },
    )
    stack.health_ports = {"order": order_health, "payment": payment_health}  # type: ignore[attr-defined]
    with stack:
        yield stack


def _target(stack: Stack, service: str) -> str:
    # The certificates name localhost; the harness dials 127.0.0.1.
    return f"localhost:{stack.order_port if service == 'order' else stack.payment_port}"


@pytest.fixture
async def as_gateway(tls_stack: Stack, pki: Pki) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.secure_channel(_target(tls_stack, "payment"), pki.credentials("gateway")) as channel:
        yield channel


async def test_the_stack_works_end_to_end_over_mtls(tls_stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=tls_stack.url, headers=tls_stack.headers, timeout=15) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text
        created = await client.post("/v1/orders", json=order_body("pm_wallet_qr"))
        assert created.status_code == 201, created.text
        order = created.json()
        async with sse(client, order["id"]) as stream:
            assert (await stream.event()) is not None
            body = {"client_secret": order["client_secret"]}
            async with httpx.AsyncClient(base_url=tls_stack.url, timeout=15) as phone:
                confirmed = await phone.post(f"/v1/payments/{order['payment']['id']}/confirm", json=body)
            assert confirmed.status_code == 200, confirmed.text
            update = await stream.event()
        assert update is not None
        assert update.message["order"]["status"] == "paid"
    for service in tls_stack.services.values():
        assert "Traceback" not in service.log()


@pytest.mark.parametrize("service", ["order", "payment"])
async def test_a_plaintext_call_is_refused(tls_stack: Stack, service: str) -> None:
    async with grpc.aio.insecure_channel(_target(tls_stack, service)) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=REFUSAL_S)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize("service", ["order", "payment"])
async def test_a_certificate_of_another_ca_is_refused(tls_stack: Stack, pki: Pki, stranger: Pki, service: str) -> None:
    # It trusts the servers' CA, so only the server's verdict on its certificate can stop it.
    credentials = stranger.credentials("gateway", trusted=pki.authority)
    async with grpc.aio.secure_channel(_target(tls_stack, service), credentials) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=REFUSAL_S)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_a_client_does_not_trust_a_server_of_another_ca(tls_stack: Stack, pki: Pki, stranger: Pki) -> None:
    credentials = pki.credentials("gateway", trusted=stranger.authority)
    async with grpc.aio.secure_channel(_target(tls_stack, "order"), credentials) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=REFUSAL_S)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_only_the_order_service_may_move_money(tls_stack: Stack, pki: Pki, as_gateway: grpc.aio.Channel) -> None:
    payments = payment_pb2_grpc.PaymentServiceStub(as_gateway)
    charge = payment_pb2.ChargeRequest(
        order_id="ord_MTLS", amount=100, currency="EUR", payment_method="pm_card_visa", idempotency_key="k-mtls"
    )
    for call in (
        payments.Charge(charge, timeout=5),
        payments.Refund(payment_pb2.RefundRequest(payment_id="pay_1", idempotency_key="k"), timeout=5),
        payments.CancelPayment(payment_pb2.CancelPaymentRequest(payment_id="pay_1"), timeout=5),
        payments.ConfirmPayment(payment_pb2.ConfirmPaymentRequest(payment_id="pay_1"), timeout=5),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await call
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # The gateway's certificate may read a payment (this one does not exist).
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await payments.GetPayment(payment_pb2.GetPaymentRequest(payment_id="pay_1"), timeout=5)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    # The order service's certificate may charge.
    async with grpc.aio.secure_channel(_target(tls_stack, "payment"), pki.credentials("order-service")) as channel:
        payment = await payment_pb2_grpc.PaymentServiceStub(channel).Charge(charge, timeout=5)
    assert payment.status == payment_pb2.PAYMENT_STATUS_SUCCEEDED


async def test_a_certificate_of_the_ca_with_another_name_is_permission_denied(tls_stack: Stack, pki: Pki) -> None:
    async with grpc.aio.secure_channel(_target(tls_stack, "order"), pki.credentials("intruder")) as channel:
        orders = order_pb2_grpc.OrderServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await orders.GetOrder(order_pb2.GetOrderRequest(order_id="ord_1"), timeout=5)
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
        # The health check stays open to any certificate of the CA.
        reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_only_the_gateway_may_act_for_an_account(tls_stack: Stack, pki: Pki) -> None:
    async with grpc.aio.secure_channel(_target(tls_stack, "order"), pki.credentials("reporting")) as channel:
        orders = order_pb2_grpc.OrderServiceStub(channel)
        request = order_pb2.ListOrdersRequest(page_size=1)
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await orders.ListOrders(request, metadata=((ACCOUNT_KEY, ACCOUNT),), timeout=5)
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
        # Without it, the call is internal, which `reporting` is allowed to make.
        await orders.ListOrders(request, timeout=5)


@pytest.mark.parametrize("service", ["order", "payment"])
async def test_the_plaintext_health_port_answers_the_health_check_and_nothing_else(
    tls_stack: Stack, service: str
) -> None:
    port = tls_stack.health_ports[service]  # type: ignore[attr-defined]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.aio.AioRpcError) as nothing:
            await order_pb2_grpc.OrderServiceStub(channel).GetOrder(order_pb2.GetOrderRequest(order_id="o"), timeout=5)
        assert nothing.value.code() == grpc.StatusCode.UNIMPLEMENTED

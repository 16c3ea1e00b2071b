from __future__ import annotations

from typing import Any

import pytest

from common.authz import CallerPolicy, check
from common.errors import PermissionDenied

CHARGE = "/shop.payment.v1.PaymentService/Charge"
GET = "/shop.payment.v1.PaymentService/GetPayment"
HEALTH = "/grpc.health.v1.Health/Check"


class FakeContext:
    def __init__(self, *names: str, metadata: tuple[tuple[str, str], ...] = ()) -> None:
        self._auth = {"x509_common_name": [n.encode() for n in names[:1]], "x509_subject_alternative_name": [
            n.encode() for n in names[1:]]}  # fmt: skip
        self._metadata = metadata

    def auth_context(self) -> dict[str, Any]:
        return self._auth

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata


def Context(*names: str, metadata: tuple[tuple[str, str], ...] = ()) -> Any:
    return FakeContext(*names, metadata=metadata)


POLICY = CallerPolicy.parse(
    "Charge,Refund:order-service; /shop.payment.v1.PaymentService/GetPayment:order-service,gateway; *:order-service",
    "gateway, order-service",
)


def test_rules_by_short_name_full_name_and_star() -> None:
    assert POLICY.callers_of(CHARGE) == frozenset({"order-service"})
    assert POLICY.callers_of(GET) == frozenset({"order-service", "gateway"})
    assert POLICY.callers_of("/shop.payment.v1.PaymentService/CancelPayment") == frozenset({"order-service"})
    assert POLICY.callers_of(HEALTH) is None  # always open to a certificate of the CA


def test_without_rules_any_certificate_may_call() -> None:
    open_policy = CallerPolicy.parse(None, None)
    assert not open_policy.restricts
    check(open_policy, CHARGE, Context("anyone", metadata=(("x-account-id", "acct_a"),)))


def test_names_from_the_common_name_and_the_alternative_names() -> None:
    check(POLICY, CHARGE, Context("order-service"))
    check(POLICY, CHARGE, Context("some-cn", "order-service"))
    check(POLICY, GET, Context("gateway"))
    for context in (Context("gateway"), Context(), Context("order-service-2")):
        with pytest.raises(PermissionDenied):
            check(POLICY, CHARGE, context)


def test_only_scope_senders_may_act_for_an_account() -> None:
    policy = CallerPolicy.parse("*:gateway,reporting", "gateway")
    scoped = (("x-account-id", "acct_a"),)
    check(policy, GET, Context("gateway", metadata=scoped))
    check(policy, GET, Context("reporting"))
    with pytest.raises(PermissionDenied, match="x-account-id"):
        check(policy, GET, Context("reporting", metadata=scoped))
    with pytest.raises(PermissionDenied):
        check(policy, GET, Context("reporting", metadata=(("x-client-secret", "s" * 20),)))


@pytest.mark.parametrize(
    ("allow", "senders"),
    [("Charge", None), ("Charge:", None), ("Char ge:order", None), ("Charge:order service", None), (None, " , ")],
)
def test_a_bad_policy_is_refused(allow: str | None, senders: str | None) -> None:
    with pytest.raises(ValueError, match="GRPC_TLS"):
        CallerPolicy.parse(allow, senders)

"""Which certificate may call which method (docs/security.md#mtls-between-the-services), for a gRPC
server with mTLS on.

Two settings of a server (both optional; unset, any certificate that its CA signed may call
anything and send anything, so that one certificate shared by the three processes of `make
run` works):

    GRPC_TLS_ALLOW="Charge,Refund,ConfirmPayment,CancelPayment:order-service;GetPayment:order-service,gateway"
        rules `<methods>:<names>`, separated by `;`. A method is named as in the proto
        (`Charge`) or in full (`/shop.payment.v1.PaymentService/Charge`); `*` stands for every
        method that no rule names. A method that no rule covers may be called by any
        certificate the CA signed; the health check and reflection always may.
    GRPC_TLS_SCOPE_SENDERS="gateway"
        the names that may send `x-account-id` or `x-client-secret` (common/caller.py). From any
        other caller such a call is PERMISSION_DENIED: were it dropped instead, the call would
        become internal, which may see more, not less.

A certificate's names are its subject's common name and its subject alternative names. A call
that is not allowed is PERMISSION_DENIED, with the method and the caller's names in the log.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

import grpc
from pydantic import Field
from pydantic_settings import BaseSettings

from common.caller import SCOPE_KEYS
from common.errors import PermissionDenied
from common.grpc_handlers import INFRASTRUCTURE_PREFIXES, Hook, Kind

log = logging.getLogger(__name__)

ANY = None  # "any certificate the CA signed"
_NAME_RE = re.compile(r"[A-Za-z0-9_.*:-]{1,253}\Z")
_METHOD_RE = re.compile(r"(/[A-Za-z0-9_.]+/)?[A-Za-z0-9_]+\Z|\*\Z")
Context = grpc.aio.ServicerContext[Any, Any]


def _names(text: str, what: str) -> frozenset[str]:
    names = frozenset(name.strip() for name in text.split(",") if name.strip())
    if not names or not all(_NAME_RE.match(name) for name in names):
        raise ValueError(f"{what}: expected certificate names separated by commas")
    return names


@dataclass(frozen=True)
class CallerPolicy:
    """Per method (short name, full name or "*"): the names that may call it."""

    rules: dict[str, frozenset[str]]
    scope_senders: frozenset[str] | None

    @classmethod
    def parse(cls, allow: str | None, scope_senders: str | None) -> CallerPolicy:
        rules: dict[str, frozenset[str]] = {}
        for position, rule in enumerate((allow or "").split(";"), start=1):
            if not rule.strip():
                continue
            methods, colon, names = rule.partition(":")
            if not colon:
                raise ValueError(f"GRPC_TLS_ALLOW: rule {position} is not `<methods>:<names>`")
            for method in (m.strip() for m in methods.split(",")):
                if not _METHOD_RE.match(method):
                    raise ValueError(f"GRPC_TLS_ALLOW: rule {position}: {method!r} is not a method name or *")
                rules[method] = _names(names, f"GRPC_TLS_ALLOW: rule {position}")
        senders = _names(scope_senders, "GRPC_TLS_SCOPE_SENDERS") if scope_senders else None
        return cls(rules, senders)

    def callers_of(self, method: str) -> frozenset[str] | None:
        """Who may call `method` (`/package.Service/Method`); None: any certificate."""
        if method.startswith(INFRASTRUCTURE_PREFIXES):
            return ANY
        short = method.rsplit("/", 1)[-1]
        for name in (method, short, "*"):
            if name in self.rules:
                return self.rules[name]
        return ANY

    @property
    def restricts(self) -> bool:
        return bool(self.rules) or self.scope_senders is not None

    def for_method(self, method: str, kind: Kind) -> _MethodCheck | None:
        """A check at the start of each call of `method` (a hook of common/grpc_handlers.py, after
        the one that logs: a refusal is logged and answered like any other error of a handler)."""
        if self.callers_of(method) is ANY and self.scope_senders is None:
            return None
        return _MethodCheck(self, method)


class CallerPolicySettings(BaseSettings):
    """A mixin for the gRPC services' settings."""

    grpc_tls_allow: str | None = Field(None, validation_alias="GRPC_TLS_ALLOW")
    grpc_tls_scope_senders: str | None = Field(None, validation_alias="GRPC_TLS_SCOPE_SENDERS")

    @property
    def caller_policy(self) -> CallerPolicy:
        return CallerPolicy.parse(self.grpc_tls_allow, self.grpc_tls_scope_senders)


def peer_names(context: Context) -> frozenset[str]:
    """The names of the caller's verified certificate (empty for a plaintext caller)."""
    auth = context.auth_context() or {}
    names = [*auth.get("x509_common_name", ()), *auth.get("x509_subject_alternative_name", ())]
    return frozenset(n.decode() if isinstance(n, bytes) else str(n) for n in names)


def _sends_scope(context: Context) -> bool:
    return any(key in SCOPE_KEYS for key, _ in context.invocation_metadata() or ())


def check(policy: CallerPolicy, method: str, context: Context) -> None:
    callers = policy.callers_of(method)
    scoped = policy.scope_senders is not None and _sends_scope(context)
    if callers is ANY and not scoped:
        return
    names = peer_names(context)
    if callers is not ANY and not names & callers:
        log.warning("caller not allowed", extra={"rpc": method, "peer_names": sorted(names)})
        raise PermissionDenied(f"this caller may not call {method.rsplit('/', 1)[-1]}")
    if scoped and policy.scope_senders is not None and not names & policy.scope_senders:
        log.warning("caller may not act for an account", extra={"rpc": method, "peer_names": sorted(names)})
        raise PermissionDenied("this caller may not send x-account-id or x-client-secret")


class _MethodCheck:
    __slots__ = ("method", "policy")

    def __init__(self, policy: CallerPolicy, method: str) -> None:
        self.policy = policy
        self.method = method

    def start(self, context: Context) -> None:
        check(self.policy, self.method, context)

    def first_message(self, state: None) -> None:
        return None

    def end(self, state: None, context: Context, code: grpc.StatusCode) -> None:
        return None


def hooks(policy: CallerPolicy, tls_on: bool) -> list[Hook]:
    """What a server adds for the policy: nothing without mTLS (no names to check) or rules."""
    return [policy] if tls_on and policy.restricts else []

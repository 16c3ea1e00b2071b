from __future__ import annotations

import pytest

from common.caller import ACCOUNT_KEY, CLIENT_SECRET_KEY, INTERNAL, CallerScope, caller_scope, secrets_equal
from common.errors import InvalidArgument, PermissionDenied

SECRET = "ord_1_secret_0123456789abcdefABCDEF-_"


def test_no_metadata_is_an_internal_call() -> None:
    assert caller_scope(None) is INTERNAL
    assert caller_scope([("x-request-id", "r")]) is INTERNAL
    assert INTERNAL.internal
    assert INTERNAL.may_see("acct_a", SECRET)
    assert INTERNAL.may_see("", "")  # records from before accounts too
    assert INTERNAL.idempotency_prefix() == ""


def test_an_account_sees_its_own_records_only() -> None:
    scope = caller_scope([(ACCOUNT_KEY, "acct_a")])
    assert scope == CallerScope(account_id="acct_a")
    assert scope.may_see("acct_a", "")
    assert not scope.may_see("acct_b", SECRET)
    assert not scope.may_see("", "")
    assert scope.idempotency_prefix() == "acct_a/"
    assert scope.metadata() == ((ACCOUNT_KEY, "acct_a"),)


def test_a_client_secret_sees_its_one_record() -> None:
    scope = caller_scope([(CLIENT_SECRET_KEY, SECRET)])
    assert scope.may_see("acct_a", SECRET)
    assert not scope.may_see("acct_a", SECRET[:-1] + "x")
    assert not scope.may_see("acct_a", "")
    with pytest.raises(PermissionDenied):
        scope.require_account("refund")
    prefix = scope.idempotency_prefix()
    assert prefix.startswith("cs:")
    assert SECRET not in prefix  # the scope of a key is stored in clear


@pytest.mark.parametrize(
    "metadata",
    [
        [(ACCOUNT_KEY, "acct a")],
        [(ACCOUNT_KEY, "")],
        [(ACCOUNT_KEY, "a" * 65)],
        [(CLIENT_SECRET_KEY, "short")],
        [(CLIENT_SECRET_KEY, SECRET + "!")],
        [(ACCOUNT_KEY, "acct_a"), (CLIENT_SECRET_KEY, SECRET)],
    ],
)
def test_malformed_scope_metadata_is_invalid_and_not_echoed(metadata: list[tuple[str, str]]) -> None:
    with pytest.raises(InvalidArgument) as refused:
        caller_scope(metadata)
    assert SECRET not in str(refused.value)
    assert SECRET not in repr(refused.value.violations)


def test_secrets_equal() -> None:
    assert secrets_equal(SECRET, SECRET)
    assert not secrets_equal(SECRET, SECRET + "x")
    assert not secrets_equal("", "")  # an empty stored secret matches nothing
    assert not secrets_equal(SECRET, "")

from __future__ import annotations

import pytest

from gateway.api_keys import KeyListError, parse_keys

SK = "sk_test_" + "0123456789abcdef" + "A"
RK = "rk_test_" + "0123456789abcdef" + "B"
OTHER = "sk_live_" + "Z" * 30


def test_a_list_of_accounts_and_keys() -> None:
    ring = parse_keys(f" acct_a:{SK}, acct_a:{RK} ,acct_b:{OTHER}")
    assert len(ring) == 3
    assert ring.accounts == {"acct_a", "acct_b"}
    secret, read_only, other = ring.lookup(SK), ring.lookup(RK), ring.lookup(OTHER)
    assert secret is not None
    assert read_only is not None
    assert other is not None
    assert (secret.account_id, secret.read_only) == ("acct_a", False)
    assert (read_only.account_id, read_only.read_only) == ("acct_a", True)
    assert other.account_id == "acct_b"
    assert len({secret.key_id, read_only.key_id, other.key_id}) == 3


@pytest.mark.parametrize("guess", [SK[:-1], SK + "x", SK.upper(), " " + SK, "", RK.replace("rk_", "sk_"), "acct_a"])
def test_anything_but_the_exact_key_is_unknown(guess: str) -> None:
    assert parse_keys(f"acct_a:{SK},acct_a:{RK}").lookup(guess) is None


def test_only_digests_are_kept() -> None:
    ring = parse_keys(f"acct_a:{SK}")
    held = repr(vars(ring)) + repr(ring)
    assert SK not in held
    assert SK.encode() not in repr(vars(ring)).encode()
    assert "acct_a" in repr(ring)  # what it may show


def test_digests_differ_per_process_start() -> None:
    # A keyed digest: two parses of the same list (two processes) share nothing to compare.
    first, second = parse_keys(f"acct_a:{SK}"), parse_keys(f"acct_a:{SK}")
    assert set(vars(first)["_entries"]) != set(vars(second)["_entries"])


def test_a_keys_rate_limit_name_is_the_same_in_every_process_and_is_not_the_key() -> None:
    """Gateway replicas count a key in one shared Redis under this name."""
    first, second = parse_keys(f"acct_a:{SK}").lookup(SK), parse_keys(f"acct_b:{OTHER},acct_a:{SK}").lookup(SK)
    assert first is not None
    assert second is not None
    assert first.key_id == second.key_id
    assert SK not in first.key_id
    assert SK[8:24] not in first.key_id


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no API key"),
        (" , ", "no API key"),
        (SK, "entry 1 is not"),
        (f"acct_a:{SK},broken", "entry 2 is not"),
        (f":{SK}", "entry 1: the account id"),
        (f"acct-a:{SK}", "entry 1: the account id"),
        ("acct_a:sk_short_key", "entry 1: the key"),
        ("acct_a:pk_test_0123456789abcdefghij", "entry 1: the key"),
        ("acct_a:sk_test_0123456789abcdef-ghij", "entry 1: the key"),
        (f"acct_a:{SK},acct_b:{SK}", "entry 2: the same key"),
        ("acct_a:sk_" + "a" * 253, "entry 1: the key"),
    ],
)
def test_a_bad_list_is_refused_without_showing_a_key(text: str, message: str) -> None:
    with pytest.raises(KeyListError) as refused:
        parse_keys(text)
    assert message in str(refused.value)
    for part in text.replace(",", ":").split(":"):
        if len(part) > 8:
            assert part not in str(refused.value)


def test_key_lengths_at_the_limits() -> None:
    assert parse_keys("a:sk_" + "a" * 21).lookup("sk_" + "a" * 21) is not None  # 24 characters
    with pytest.raises(KeyListError):
        parse_keys("a:sk_" + "a" * 20)  # 23
    assert parse_keys("a:rk_" + "a" * 252).lookup("rk_" + "a" * 252) is not None  # 255

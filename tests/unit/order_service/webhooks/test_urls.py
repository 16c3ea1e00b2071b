"""Which webhook URLs and addresses are refused (docs/webhooks.md), and that a refusal never names
the address."""

from __future__ import annotations

import ipaddress

import pytest

from order_service.webhooks import urls


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/x", "http:// or https://"),
        ("javascript:alert(1)", "http:// or https://"),
        ("https://user:pass@example.com/", "user name or password"),
        ("https://user@example.com/", "user name or password"),
        ("https://example.com/" + "a" * 2048, "longer than 2048"),
        ("https:///path", "no host"),
        ("not a url", "http:// or https://"),
    ],
)
def test_forms_that_are_refused(url: str, reason: str) -> None:
    with pytest.raises(urls.UrlRefused, match=reason):
        urls.parse(url)


def test_a_url_of_exactly_2048_characters_passes() -> None:
    url = "https://example.com/" + "a" * (2048 - len("https://example.com/"))
    assert len(url) == 2048
    assert urls.parse(url).host == "example.com"


ALWAYS = ["169.254.169.254", "169.254.0.1", "fe80::1", "224.0.0.1", "ff02::1", "0.0.0.0", "::", "::ffff:169.254.1.1"]
PRIVATE = ["127.0.0.1", "::1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "fc00::1", "100.64.0.1", "::ffff:127.0.0.1"]
PUBLIC = ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "8.8.8.8"]


@pytest.mark.parametrize("address", ALWAYS)
def test_link_local_multicast_and_unspecified_are_always_refused(address: str) -> None:
    for allow_private in (False, True):
        assert urls.refusal(ipaddress.ip_address(address), allow_private) is not None


@pytest.mark.parametrize("address", PRIVATE)
def test_loopback_and_private_only_when_allowed(address: str) -> None:
    reason = urls.refusal(ipaddress.ip_address(address), False)
    assert reason is not None
    assert "WEBHOOK_ALLOW_PRIVATE_NETWORKS" in reason
    assert address not in reason
    assert urls.refusal(ipaddress.ip_address(address), True) is None


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address: str) -> None:
    assert urls.refusal(ipaddress.ip_address(address), False) is None


async def test_a_name_is_resolved_and_every_address_checked() -> None:
    # `localhost` resolves to loopback: refused unless private networks are allowed.
    with pytest.raises(urls.UrlRefused, match="loopback"):
        await urls.check("http://localhost:8080/hook", allow_private=False)
    assert (await urls.check("http://localhost:8080/hook", allow_private=True)).host == "localhost"
    # A number that the resolver reads as an address is checked as that address.
    with pytest.raises(urls.UrlRefused, match="loopback"):
        await urls.check("http://2130706433/hook", allow_private=False)
    with pytest.raises(urls.UrlRefused, match="link-local"):
        await urls.check("http://[fe80::1]/hook", allow_private=True)


async def test_a_name_that_does_not_resolve_is_refused() -> None:
    with pytest.raises(urls.UrlRefused, match="does not resolve"):
        await urls.check("https://no-such-host.invalid/hook", allow_private=True)

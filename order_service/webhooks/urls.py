"""Which webhook URLs may be called (docs/webhooks.md): our users point this HTTP client wherever they
like, so it must not become a way into the networks behind it (SSRF).

Refused: a scheme other than http/https, user info, more than 2,048 characters, and a host that
is or resolves to a link-local (169.254.0.0/16 — cloud metadata lives there — fe80::/10),
multicast or unspecified address; and loopback or any other non-public address unless
WEBHOOK_ALLOW_PRIVATE_NETWORKS is true. Checked when an endpoint is created and again at every
attempt, after resolving the host: DNS can change. The sender then connects to an address it
checked (sender.py), so a second lookup cannot swap in another one (DNS rebinding).

The reasons say what kind of address was refused, never which address: a user who may not call
our internal network should not be able to map it from the error messages either.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import httpx

MAX_URL_LENGTH = 2048
SCHEMES = ("http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443}
PRIVATE_HINT = "allowed only with WEBHOOK_ALLOW_PRIVATE_NETWORKS=true"
# A lookup that takes longer is as good as none (it would hold up the call that waits for it).
RESOLVE_TIMEOUT_S = 3.0

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UrlRefused(Exception):
    """The URL or its host's address may not be called; the message says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse(url: str) -> httpx.URL:
    """The URL if its form is allowed (scheme, no user info, length, a host), else UrlRefused."""
    if len(url) > MAX_URL_LENGTH:
        raise UrlRefused(f"the URL is longer than {MAX_URL_LENGTH} characters")
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError):
        raise UrlRefused("the URL is not valid") from None
    if parsed.scheme not in SCHEMES:
        raise UrlRefused("the URL must start with http:// or https://")
    if parsed.userinfo:
        raise UrlRefused("the URL must not contain a user name or password")
    if not parsed.host:
        raise UrlRefused("the URL has no host")
    return parsed


def port_of(url: httpx.URL) -> int:
    return url.port or DEFAULT_PORTS[url.scheme]


def refusal(address: IPAddress, allow_private: bool) -> str | None:
    """Why `address` may not be called, or None if it may."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    if address.is_link_local:
        return "the host is or resolves to a link-local address"
    if address.is_multicast:
        return "the host is or resolves to a multicast address"
    if address.is_unspecified:
        return "the host is or resolves to an unspecified address"
    if allow_private:
        return None
    if address.is_loopback:
        return f"the host is or resolves to a loopback address ({PRIVATE_HINT})"
    if not address.is_global:
        return f"the host is or resolves to a private address ({PRIVATE_HINT})"
    return None


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address of `host` (an IP literal is its own), in the resolver's order."""
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT_S):
            found = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError, TimeoutError):
        raise UrlRefused("the host name does not resolve") from None
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in found:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise UrlRefused("the host name does not resolve")
    return addresses


async def checked_addresses(host: str, port: int, allow_private: bool) -> list[IPAddress]:
    """The host's addresses, if every one of them may be called; else UrlRefused. (All of them:
    a name that resolves to a public and a private address must not reach the private one.)"""
    addresses = await resolve(host, port)
    for address in addresses:
        reason = refusal(address, allow_private)
        if reason is not None:
            raise UrlRefused(reason)
    return addresses


async def check(url: str, allow_private: bool) -> httpx.URL:
    """The whole check of docs/webhooks.md#urls-that-are-refused, as at an endpoint's creation."""
    parsed = parse(url)
    await checked_addresses(parsed.host, port_of(parsed), allow_private)
    return parsed

"""One webhook attempt: POST the signed event to the endpoint's URL and judge the answer.

An HTTP client pointed at URLs our users choose, so: the host is resolved and every address it
resolves to is checked (urls.py) right where the connection is made — the connection goes to an
address that was checked, never to one a second lookup returns; redirects are not followed (a
3xx is a failed attempt); the whole attempt — connect, send, the answer's status and body — must
finish within WEBHOOK_TIMEOUT_S; at most MAX_ANSWER_BYTES of the answer are read (more is a
failed attempt: no receiver has a reason to send it); no proxy from the environment is used (it
would connect for us, past the check). What goes wrong is said in `Outcome.error`, which the
delivery log shows: a kind of failure, never an address.

Each endpoint has a client (a connection pool) of its own, as many connections as the worker
sends at once to one endpoint: a pool looks at each of its connections on every request, and an
endpoint's connections are no use to another's (TLS names them, and a dead endpoint's pool stays
its own). The clients of endpoints not called for a while are closed, beyond MAX_CLIENTS.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import OrderedDict
from collections.abc import Iterable, Mapping

import httpcore
import httpx

from order_service.webhooks import urls
from order_service.webhooks.deliveries import Outcome

MAX_ANSWER_BYTES = 64 * 1024
USER_AGENT = "shop-webhooks/1"
MAX_CLIENTS = 500
_KEEPALIVE_S = 5.0


class _CheckedNetwork(httpcore.AsyncNetworkBackend):
    """Opens TCP connections only to addresses that pass `urls.refusal`, resolving the host
    itself. TLS still verifies the certificate against the URL's host name (httpcore hands the
    name, not the address, to the handshake)."""

    def __init__(self, allow_private: bool) -> None:
        self._allow_private = allow_private
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await urls.checked_addresses(host, port, self._allow_private)
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(str(address), port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise urls.UrlRefused("unix sockets are not webhook endpoints")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _CheckedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport (its error mapping included) over a pool whose connections are made
    by `_CheckedNetwork`: httpx has no parameter for the pool's network backend, so the pool it
    made is replaced by an equal one that has it."""

    def __init__(self, network: _CheckedNetwork, tls: ssl.SSLContext, connections: int) -> None:
        super().__init__(verify=tls, trust_env=False)  # (given the context: no CA bundle loaded again)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=tls,
            max_connections=connections,
            max_keepalive_connections=connections,
            keepalive_expiry=_KEEPALIVE_S,
            network_backend=network,
        )


class Sender:
    def __init__(self, allow_private: bool, timeout_s: float, connections_per_endpoint: int) -> None:
        self.timeout_s = timeout_s
        self._network = _CheckedNetwork(allow_private)
        self._tls = httpx.create_ssl_context(trust_env=False)  # loading the CA bundle once
        self._connections = connections_per_endpoint
        self._clients: OrderedDict[str, httpx.AsyncClient] = OrderedDict()

    def _client(self, endpoint_id: str) -> httpx.AsyncClient:
        client = self._clients.get(endpoint_id)
        if client is None:
            client = self._clients[endpoint_id] = httpx.AsyncClient(
                transport=_CheckedTransport(self._network, self._tls, self._connections),
                follow_redirects=False,
                trust_env=False,
                timeout=httpx.Timeout(self.timeout_s),
                headers={"user-agent": USER_AGENT},
            )
            while len(self._clients) > MAX_CLIENTS:
                _, oldest = self._clients.popitem(last=False)
                asyncio.get_running_loop().create_task(oldest.aclose())
        self._clients.move_to_end(endpoint_id)
        return client

    async def send(self, endpoint_id: str, url: str, headers: Mapping[str, str], body: bytes) -> Outcome:
        try:
            urls.parse(url)
            async with asyncio.timeout(self.timeout_s):
                return await self._post(self._client(endpoint_id), url, headers, body)
        except urls.UrlRefused as refused:
            return Outcome(False, error=f"not sent: {refused.reason}")
        except (TimeoutError, httpx.TimeoutException):
            return Outcome(False, error=f"no complete answer within {self.timeout_s:g} s")
        except httpx.ConnectError:
            return Outcome(False, error="could not connect to the endpoint")
        except (httpx.RemoteProtocolError, httpx.LocalProtocolError, httpx.DecodingError):
            return Outcome(False, error="the answer is not valid HTTP")
        except httpx.HTTPError as exc:
            return Outcome(False, error=f"the request failed ({type(exc).__name__})")

    @staticmethod
    async def _post(client: httpx.AsyncClient, url: str, headers: Mapping[str, str], body: bytes) -> Outcome:
        async with client.stream("POST", url, content=body, headers=headers) as response:
            code = response.status_code
            read = 0
            async for chunk in response.aiter_raw():
                read += len(chunk)
                if read > MAX_ANSWER_BYTES:
                    return Outcome(False, code, f"the answer's body is over {MAX_ANSWER_BYTES // 1024} KiB")
        if 200 <= code < 300:
            return Outcome(True, code)
        if 300 <= code < 400:
            return Outcome(False, code, f"the endpoint answered HTTP {code}; redirects are not followed")
        return Outcome(False, code, f"the endpoint answered HTTP {code}")

    async def close(self) -> None:
        clients, self._clients = list(self._clients.values()), OrderedDict()
        await asyncio.gather(*(client.aclose() for client in clients))

"""The connection to the workspace: httpcore's async connection pool, on the server's event loop.

httpcore is httpx's transport: the same pooling, HTTP/1.1 and TLS (httpx's
SSL context: certifi, or ``SSL_CERT_FILE``/``SSL_CERT_DIR``), and proxies from
``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY`` as httpx reads them. It is used
directly because httpx's request and response models (URL parsing, header
normalisation, decoders) cost more CPU per call than everything else the
gateway does; a streamed answer is one coroutine reading one connection.

Answers are passed on as bytes, exactly as received (chunked framing
removed, content encoding kept): the gateway asks for ``identity`` so that it
can read the usage.
"""

from __future__ import annotations

import asyncio
import ssl
import urllib.request
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

import httpcore
import httpx

# connect, read (between two chunks of an answer: a model may think for minutes), write, pool
TIMEOUTS = {"connect": 10.0, "read": 600.0, "write": 60.0, "pool": 30.0}
# What can go wrong on the way; each becomes a 502 with the reason.
ERRORS: tuple[type[BaseException], ...] = (httpcore.TimeoutException, httpcore.NetworkError, httpcore.ProtocolError,
                                           httpcore.ProxyError, httpcore.UnsupportedProtocol, OSError, ssl.SSLError)


@lru_cache(maxsize=64)
def _split(base: str) -> tuple[bytes, bytes, int | None, str]:
    parts = urlsplit(base)
    return (parts.scheme.encode("ascii"), (parts.hostname or "").encode("idna"), parts.port,
            parts.path.rstrip("/"))


class Answer:
    """An upstream answer being received: status, headers, then the body as it arrives."""

    def __init__(self, response: httpcore.Response) -> None:
        self._response = response
        self.status = response.status
        self.headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.headers]

    def header(self, name: str) -> str:
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), "")

    async def chunks(self) -> AsyncIterator[bytes]:
        async for chunk in self._response.aiter_stream():
            yield chunk

    async def read(self) -> bytes:
        return await self._response.aread()

    async def close(self) -> None:
        await self._response.aclose()


@dataclass
class _Pools:
    loop: asyncio.AbstractEventLoop
    direct: httpcore.AsyncConnectionPool
    proxied: dict[str, httpcore.AsyncHTTPProxy]
    proxies: dict[str, str]  # the environment's, read once: reading them walks all of os.environ


class Upstream:
    """Connection pools to the workspace (and through a proxy when the environment names one)."""

    def __init__(self, *, max_connections: int = 100, keepalive: int = 20, keepalive_s: float = 60.0) -> None:
        self._limits = {"max_connections": max_connections, "max_keepalive_connections": keepalive,
                        "keepalive_expiry": keepalive_s}
        self._pools: _Pools | None = None
        self._ssl: ssl.SSLContext | None = None

    def _pool_for(self, scheme: bytes, host: bytes) -> httpcore.AsyncConnectionPool:
        loop = asyncio.get_running_loop()
        if self._pools is None or self._pools.loop is not loop:
            if self._ssl is None:
                self._ssl = httpx.create_ssl_context()
            self._pools = _Pools(loop, httpcore.AsyncConnectionPool(ssl_context=self._ssl, **self._limits), {},
                                 urllib.request.getproxies_environment())
        proxies = self._pools.proxies
        proxy = proxies.get(scheme.decode()) or proxies.get("all")
        if not proxy or urllib.request.proxy_bypass_environment(host.decode("idna"), proxies):
            return self._pools.direct
        pool = self._pools.proxied.get(proxy)
        if pool is None:
            pool = httpcore.AsyncHTTPProxy(proxy_url=proxy, ssl_context=self._ssl, **self._limits)
            self._pools.proxied[proxy] = pool
        return pool

    async def send(self, method: str, base: str, rest: str, query: str, headers: Sequence[tuple[str, str]],
                   body: bytes) -> Answer:
        """Send ``method {base}/{rest}?{query}``; returns once the answer's headers are in. Raises ``ERRORS``."""
        scheme, host, port, path = _split(base)
        target = f"{path}/{rest}" + (f"?{query}" if query else "")
        url = httpcore.URL(scheme=scheme, host=host, port=port, target=target.encode("utf-8"))
        authority = host + (b":%d" % port if port else b"")
        raw_headers = [(b"host", authority), *((k.encode("latin-1"), v.encode("latin-1")) for k, v in headers)]
        if body or method not in ("GET", "HEAD"):
            raw_headers.append((b"content-length", str(len(body)).encode()))
        request = httpcore.Request(method.encode("ascii"), url, headers=raw_headers, content=body,
                                   extensions={"timeout": TIMEOUTS})
        response = await self._pool_for(scheme, host).handle_async_request(request)
        return Answer(response)

    async def aclose(self) -> None:
        pools, self._pools = self._pools, None
        if pools is not None:
            await pools.direct.aclose()
            for pool in pools.proxied.values():
                await pool.aclose()

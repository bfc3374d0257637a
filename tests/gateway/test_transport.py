"""gateway.transport: aiohttp under httpx, with the error types httpx itself would raise.

Against a real socket server, because what matters is what happens on the wire: a refused connection
is retried, a dropped one is not, a body cut short is an error, and a client that stops reading a
stream closes the upstream connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from gateway import Settings
from gateway.errors import UpstreamUnavailableError
from gateway.transport import UpstreamTransport, env_proxy
from gateway.upstream import NOT_CONNECTED, Upstream

pytestmark = pytest.mark.anyio

JSON = b'{"ok":true}'


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Server:
    """A raw HTTP/1.1 server; the request path picks the behaviour."""

    def __init__(self) -> None:
        self.requests: list[bytes] = []
        self.closed = asyncio.Event()
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length")
                    ),
                    0,
                )
                await reader.readexactly(length)
                target = head.split(b" ")[1]
                self.requests.append(target)
                # Through a proxy the target is absolute ("http://host:port/ok"): serve its path.
                path = b"/" + target.split(b"/", 3)[3] if target.startswith(b"http://") else target
                if path == b"/ok":
                    writer.write(
                        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                        % (len(JSON), JSON)
                    )
                elif path == b"/drop":
                    break
                elif path == b"/cut":
                    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial")
                    await writer.drain()
                    break
                elif path == b"/silent":
                    await asyncio.sleep(30)
                elif path == b"/stream":
                    writer.write(
                        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
                    )
                    for _ in range(200):
                        writer.write(b"b\r\ndata: x\n\n\r\n\r\n")
                        await writer.drain()
                        await asyncio.sleep(0.02)
                    writer.write(b"0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.closed.set()
            writer.close()


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    srv = Server()
    listener = await asyncio.start_server(srv.handle, "127.0.0.1", 0)
    srv.port = listener.sockets[0].getsockname()[1]
    async with listener:
        yield srv


def _client(port: int, read_timeout: float = 5.0) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", transport=UpstreamTransport(), timeout=httpx.Timeout(read_timeout)
    )


async def test_a_request_and_keep_alive(server: Server) -> None:
    async with _client(server.port) as client:
        for _ in range(3):
            response = await client.post("/ok", json={"a": 1})
            assert response.status_code == 200 and response.json() == {"ok": True}
    assert server.requests == [b"/ok"] * 3


async def test_an_idle_connection_is_dropped_after_the_keepalive(server: Server) -> None:
    # The gateway must close idle connections before the upstream server does (see settings).
    connections: list[int] = []
    handle = server.handle

    async def counting(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        await handle(reader, writer)

    server.handle = counting  # type: ignore[method-assign]
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    async with (
        listener,
        httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", transport=UpstreamTransport(keepalive_expiry=0.3)
        ) as client,
    ):
        await client.post("/ok", json={})
        await client.post("/ok", json={})
        assert len(connections) == 1, "back-to-back requests share one connection"
        await asyncio.sleep(0.6)
        await client.post("/ok", json={})
        assert len(connections) == 2, "a connection idle past the keep-alive is not reused"


def test_the_environment_proxy_is_looked_up_for_the_upstream(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://user:pw@proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    proxy = env_proxy("http://vllm.example:8000")
    assert proxy is not None and proxy.url == httpx.URL("http://proxy.internal:3128") and proxy.auth == ("user", "pw")
    assert env_proxy("http://127.0.0.1:8001") is None, "NO_PROXY is honoured"
    monkeypatch.delenv("HTTP_PROXY")
    assert env_proxy("http://vllm.example:8000") is None


async def test_requests_go_through_the_environment_proxy(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    # The raw server plays the proxy: it sees the absolute URL of the upstream in the request line.
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{server.port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    upstream = "http://upstream.invalid:8000"
    async with httpx.AsyncClient(base_url=upstream, transport=UpstreamTransport(base_url=upstream)) as client:
        response = await client.post("/ok", json={})
    assert response.json() == {"ok": True}
    assert server.requests == [b"http://upstream.invalid:8000/ok"]


async def test_refused_connection_is_a_connect_error() -> None:
    with __import__("socket").socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connections are refused
        async with _client(port) as client:
            with pytest.raises(httpx.ConnectError):
                await client.get("/ok")


async def test_dropped_connection_is_not_a_connect_error(server: Server) -> None:
    async with _client(server.port) as client:
        with pytest.raises(httpx.TransportError) as caught:
            await client.post("/drop", json={})
    assert isinstance(caught.value, httpx.RemoteProtocolError)
    assert not isinstance(caught.value, NOT_CONNECTED), "a request that reached the upstream must not be retried"


async def test_a_body_cut_short_is_a_read_error(server: Server) -> None:
    async with _client(server.port) as client:
        with pytest.raises(httpx.TransportError) as caught:
            await client.post("/cut", json={})
    assert not isinstance(caught.value, NOT_CONNECTED)


async def test_silence_is_a_read_timeout(server: Server) -> None:
    async with _client(server.port, read_timeout=0.3) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.post("/silent", json={})


async def test_closing_a_stream_early_closes_the_upstream_connection(server: Server) -> None:
    async with _client(server.port) as client:
        async with client.stream("POST", "/stream", json={}) as response:
            async for chunk in response.aiter_raw():
                assert chunk.startswith(b"data: x")
                break
        await asyncio.wait_for(server.closed.wait(), timeout=3)


async def test_upstream_does_not_retry_a_dropped_request(server: Server) -> None:
    settings = Settings(upstream_url=f"http://127.0.0.1:{server.port}", upstream_wait_seconds=2)
    upstream = Upstream(settings)
    try:
        with pytest.raises(UpstreamUnavailableError, match="lost the connection"):
            await upstream.request("POST", "/drop", json_body={})
    finally:
        await upstream.aclose()
    assert server.requests == [b"/drop"]

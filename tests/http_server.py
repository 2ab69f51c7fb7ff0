"""A real HTTP/1.1 server on 127.0.0.1 for tests that need real sockets (a helper, not tests).

`LocalServer` listens on a random port with ``asyncio.start_server`` and answers each
request with the next entry of its `script` (then with its `default`), so a test
can make a real ``httpx.AsyncClient`` meet statuses, ``Retry-After`` headers, slow
bodies, connection resets and servers that never answer, and then count what the
server saw: the requests (method, path, headers, body, connection) and the
connections (opened so far, open now). Connections are kept alive between
requests, as HTTP/1.1 says, so connection-pool behaviour shows.

Real sockets need a real event loop, and so does real time: the virtual loops of
``tests/conftest.py`` would jump over the server's pauses. Tests that use this
server run on the plain asyncio loop, in real time, so keep their waits tiny
(tenths of a second at most) and each test well under a few seconds.

How a test module uses it::

    import http_server
    from http_server import Behaviour, LocalServer

    pytestmark = pytest.mark.anyio

    # Every test of this module runs on the real asyncio loop (this fixture is
    # registered as ``anyio_backend`` and overrides the one in conftest.py) ...
    real_asyncio = http_server.real_asyncio
    # ... and may ask for a started server by the name ``local_server``.
    local_server_fixture = http_server.local_server_fixture

    async def test_retry_after(local_server: LocalServer) -> None:
        local_server.script = [Behaviour(503, retry_after=1), 200]
        async with httpx.AsyncClient(base_url=local_server.url) as client:
            assert (await client.get("/")).headers["retry-after"] == "1"
            assert (await client.get("/")).status_code == 200

A module whose other tests stay in virtual time binds only the server fixture and
moves just the tests that need it onto the real loop, with the `real_loop` mark
(direct parametrization overrides a fixture of the same name)::

    local_server_fixture = http_server.local_server_fixture

    @http_server.real_loop
    async def test_against_a_real_server(local_server: LocalServer) -> None: ...

Without a fixture, ``async with LocalServer() as server:`` starts and stops one.
Either way the server refuses to start on a virtual-time loop or on trio, with an
error that says what to do. On the way out it closes every connection it holds
and waits for every handler, so no socket is left for a ``ResourceWarning``.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import socket
import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from resilient._clock import sleep
from resilient.testing import VirtualEventLoop

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Mapping, Sequence
    from types import TracebackType

    from typing_extensions import Self

__all__ = [
    "Behaviour",
    "LocalServer",
    "SeenRequest",
    "local_server_fixture",
    "real_asyncio",
    "real_loop",
]

#: Mark a test to run on the real asyncio loop, in a module whose ``anyio_backend`` is virtual.
real_loop = pytest.mark.parametrize("anyio_backend", ["asyncio"])


@pytest.fixture(name="anyio_backend")
def real_asyncio() -> str:
    """``anyio_backend`` for a whole module: the plain asyncio loop, in real time."""
    return "asyncio"


@dataclass(frozen=True)
class Behaviour:
    """How the server answers one request.

    Attributes:
        status: The response status.
        body: The response body.
        headers: Extra response headers (``Content-Length`` is added unless given:
            give a larger one to send a truncated body).
        retry_after: Adds ``Retry-After: <value>``.
        delay: Real seconds to wait before answering.
        slow_body: Send the head, then the body one byte every *slow_body* seconds.
        reset: Read the request, then reset the connection (``SO_LINGER`` 0, close):
            the client sees ``ECONNRESET`` instead of a response.
        hang: Read the request and never answer (until the server shuts down).
        close: Answer with ``Connection: close`` and close the connection.

    """

    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] | Sequence[tuple[str, str]] = ()
    retry_after: int | str | None = None
    delay: float = 0.0
    slow_body: float | None = None
    reset: bool = False
    hang: bool = False
    close: bool = False

    def head(self, *, keep_alive: bool) -> bytes:
        """The status line and headers, blank line included."""
        headers = list(self.headers.items() if hasattr(self.headers, "items") else self.headers)
        if self.retry_after is not None:
            headers.append(("Retry-After", str(self.retry_after)))
        if not any(name.lower() == "content-length" for name, _ in headers):
            headers.append(("Content-Length", str(len(self.body))))
        if not keep_alive:
            headers.append(("Connection", "close"))
        try:
            reason = http.HTTPStatus(self.status).phrase
        except ValueError:
            reason = "Unknown"
        lines = [f"HTTP/1.1 {self.status} {reason}", *(f"{n}: {v}" for n, v in headers)]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


@dataclass(frozen=True)
class SeenRequest:
    """A request as the server read it.

    Attributes:
        method: E.g. ``"GET"``.
        path: The request target, e.g. ``"/items?page=2"``.
        headers: ``(name, value)`` pairs in order, names lower-cased.
        body: The body (Content-Length or chunked), b"" if none.
        connection: The number of the connection it came on, from 0.

    """

    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    connection: int

    def header(self, name: str) -> str | None:
        """The first value of header *name* (any case), or None."""
        name = name.lower()
        return next((value for key, value in self.headers if key == name), None)


class _BadRequestError(Exception):
    """The client sent something this small server does not parse."""


@dataclass(eq=False)
class LocalServer:
    """A scripted HTTP/1.1 server on 127.0.0.1; an async context manager.

    Attributes:
        script: What to answer to the next requests, in order; each entry is a
            `Behaviour` or a bare status. Consumed from the front; assign or extend
            it at any time.
        default: What to answer once the script is used up: a `Behaviour`, a
            status, or a callable that takes the `SeenRequest` and returns one.
        requests: Every request read, in order.
        connections_opened: Connections accepted so far.

    """

    script: list[Behaviour | int] = field(default_factory=list)
    default: Behaviour | int | Callable[[SeenRequest], Behaviour | int] = field(
        default_factory=lambda: Behaviour(200, body=b"ok")
    )
    requests: list[SeenRequest] = field(default_factory=list, init=False)
    connections_opened: int = field(default=0, init=False)
    _server: asyncio.Server | None = field(default=None, init=False, repr=False)
    _handlers: set[asyncio.Task[Any]] = field(default_factory=set, init=False, repr=False)
    _closing: asyncio.Event | None = field(default=None, init=False, repr=False)
    _port: int = field(default=0, init=False, repr=False)

    @property
    def url(self) -> str:
        """E.g. ``http://127.0.0.1:54321``."""
        return f"http://127.0.0.1:{self._port}"

    @property
    def port(self) -> int:
        """The port it listens on."""
        return self._port

    @property
    def connections_open(self) -> int:
        """Connections the server holds open now."""
        return len(self._handlers)

    async def connections_closed(self) -> None:
        """Return once the server holds no connection open: each one's handler ended."""
        while self._handlers:
            await asyncio.wait(set(self._handlers))

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Listen on a random port of 127.0.0.1."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            msg = (
                "LocalServer needs the asyncio backend: run the test with the "
                "http_server.real_asyncio fixture or the http_server.real_loop mark"
            )
            raise RuntimeError(msg) from None
        if isinstance(loop, VirtualEventLoop):
            msg = (
                "LocalServer needs a real event loop, not a VirtualEventLoop (virtual "
                "time would skip the server's waits): bind http_server.real_asyncio in "
                "the test module or mark the test with @http_server.real_loop"
            )
            raise RuntimeError(msg)  # noqa: TRY004 -- the loop is wrong, not an argument
        self._closing = asyncio.Event()
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self._port = self._server.sockets[0].getsockname()[1]

    async def aclose(self) -> None:
        """Stop listening, close every connection, and wait for every handler to end."""
        if self._server is None:
            return
        server, self._server = self._server, None
        assert self._closing is not None
        self._closing.set()
        server.close()
        while self._handlers:
            handlers = list(self._handlers)
            for handler in handlers:
                handler.cancel()
            await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()

    def _next(self, request: SeenRequest) -> Behaviour:
        entry = self.script.pop(0) if self.script else self.default
        if callable(entry):
            entry = entry(request)
        return entry if isinstance(entry, Behaviour) else Behaviour(entry)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Handle one connection: read requests and answer them until one side closes."""
        task = asyncio.current_task()
        assert task is not None
        assert self._closing is not None
        number = self.connections_opened
        self.connections_opened += 1
        self._handlers.add(task)
        try:
            keep_alive = not self._closing.is_set()
            while keep_alive:
                request = await _read_request(reader, number)
                if request is None:
                    break
                self.requests.append(request)
                keep_alive = await self._answer(writer, request, self._next(request))
        except (ConnectionError, asyncio.IncompleteReadError, _BadRequestError, ValueError):
            pass  # the client went away, or sent what this server does not parse
        except asyncio.CancelledError:
            # Only `aclose` cancels a handler; end normally, for asyncio's callback.
            if not self._closing.is_set():
                raise
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            self._handlers.discard(task)

    async def _answer(
        self, writer: asyncio.StreamWriter, request: SeenRequest, behaviour: Behaviour
    ) -> bool:
        """Answer one request; whether the connection stays open for another."""
        assert self._closing is not None
        if behaviour.reset:
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return False
        if behaviour.hang:
            await self._closing.wait()
            return False
        if behaviour.delay:
            await sleep(behaviour.delay)
        keep_alive = not behaviour.close and _wants_keep_alive(request)
        writer.write(behaviour.head(keep_alive=keep_alive))
        body = b"" if request.method == "HEAD" else behaviour.body
        if behaviour.slow_body is None:
            writer.write(body)
            await writer.drain()
        else:
            await writer.drain()
            for i in range(len(body)):
                await sleep(behaviour.slow_body)
                writer.write(body[i : i + 1])
                await writer.drain()
        return keep_alive


def _wants_keep_alive(request: SeenRequest) -> bool:
    connection = (request.header("connection") or "").lower()
    return connection != "close"


async def _read_request(reader: asyncio.StreamReader, connection: int) -> SeenRequest | None:
    """The next request on the connection, or None if the client closed it cleanly."""
    line = await reader.readline()
    if not line:
        return None
    try:
        method, path, _version = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
    except ValueError:
        raise _BadRequestError(line) from None
    headers: list[tuple[str, str]] = []
    while True:
        line = await reader.readline()
        if not line:
            raise _BadRequestError("end of stream in the headers")
        if line in {b"\r\n", b"\n"}:
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers.append((name.strip().lower(), value.strip()))
    fields = dict(headers)
    if fields.get("transfer-encoding", "").lower() == "chunked":
        body = await _read_chunked(reader)
    else:
        body = await reader.readexactly(int(fields.get("content-length", "0")))
    return SeenRequest(method, path, tuple(headers), body, connection)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks = []
    while True:
        size = int((await reader.readline()).split(b";")[0], 16)
        if size == 0:
            break
        chunks.append(await reader.readexactly(size))
        await reader.readexactly(2)  # the CRLF after each chunk
    while (await reader.readline()) not in {b"\r\n", b"\n", b""}:
        pass  # trailers
    return b"".join(chunks)


@pytest.fixture(name="local_server")
async def local_server_fixture() -> AsyncIterator[LocalServer]:
    """A started `LocalServer`, shut down after the test (needs the real asyncio loop)."""
    async with LocalServer() as server:
        yield server

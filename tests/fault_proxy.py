"""A TCP fault proxy on 127.0.0.1 for tests (a helper, not tests).

`FaultProxy` listens on a random port and forwards every connection to an upstream
port (a `http_server.LocalServer`, say), applying the `Fault` it holds *now*: the
fault is read again for every chunk, so a test switches it at runtime by assigning
``proxy.fault``. The faults:

- ``Fault.none()``: forward as is;
- ``Fault.latency(s)``: each chunk, in either direction, waits *s* seconds first;
- ``Fault.reset()``: the next connection (or chunk) is reset (``SO_LINGER`` 0):
  the client sees ``ECONNRESET``;
- ``Fault.cut(n)``: a connection is cut (both sides closed) once *n* bytes of
  response have been forwarded on it;
- ``Fault.blackhole()``: the client's bytes are read and dropped, nothing ever
  comes back (no upstream connection is made);
- ``Fault.trickle(s)``: the response is forwarded one byte every *s* seconds.

The proxy counts connections (``connections_opened``, ``connections_open``) and
on ``aclose`` closes every one it holds and waits for every task it started, so
a test can assert that no connection and no task is left behind. Like
`LocalServer`, it needs the real asyncio loop and real time.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from types import TracebackType

    from typing_extensions import Self

__all__ = ["Fault", "FaultProxy"]

Kind = Literal["none", "latency", "reset", "cut", "blackhole", "trickle"]


@dataclass(frozen=True)
class Fault:
    """What the proxy does to the bytes it forwards (see the module docstring)."""

    kind: Kind = "none"
    seconds: float = 0.0
    after: int = 0

    @classmethod
    def none(cls) -> Fault:
        return cls("none")

    @classmethod
    def latency(cls, seconds: float) -> Fault:
        return cls("latency", seconds=seconds)

    @classmethod
    def reset(cls) -> Fault:
        return cls("reset")

    @classmethod
    def cut(cls, after: int) -> Fault:
        return cls("cut", after=after)

    @classmethod
    def blackhole(cls) -> Fault:
        return cls("blackhole")

    @classmethod
    def trickle(cls, seconds: float) -> Fault:
        return cls("trickle", seconds=seconds)


def _abort(writer: asyncio.StreamWriter) -> None:
    """Reset the connection: the peer reads ECONNRESET, not a clean end of stream."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@dataclass(eq=False)
class FaultProxy:
    """Forwards 127.0.0.1:port to 127.0.0.1:upstream, applying `fault`; an async context manager.

    Attributes:
        upstream: The port forwarded to.
        fault: The fault applied now; assign it at any time.
        connections_opened: Client connections accepted so far.
        bytes_down: Response bytes forwarded to clients so far.

    """

    upstream: int
    fault: Fault = field(default_factory=Fault.none)
    connections_opened: int = field(default=0, init=False)
    bytes_down: int = field(default=0, init=False)
    _server: asyncio.Server | None = field(default=None, init=False, repr=False)
    _handlers: set[asyncio.Task[Any]] = field(default_factory=set, init=False, repr=False)
    _port: int = field(default=0, init=False, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def connections_open(self) -> int:
        """Client connections the proxy holds open now."""
        return len(self._handlers)

    @property
    def tasks(self) -> frozenset[asyncio.Task[Any]]:
        """The proxy's own tasks (one handler per open connection)."""
        return frozenset(self._handlers)

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self._port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop listening, drop every connection, wait for every handler to end."""
        if self._server is None:
            return
        server, self._server = self._server, None
        server.close()
        while self._handlers:
            handlers = list(self._handlers)
            for handler in handlers:
                handler.cancel()
            await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self.connections_opened += 1
        upstream: asyncio.StreamWriter | None = None
        try:
            fault = self.fault
            if fault.kind == "reset":
                _abort(writer)
                return
            if fault.kind == "blackhole":
                while await reader.read(65536):
                    pass  # swallowed; the client hears nothing until it gives up
                return
            up_reader, upstream = await asyncio.open_connection("127.0.0.1", self.upstream)
            pumps = [
                asyncio.ensure_future(self._pump(reader, upstream, writer, down=False)),
                asyncio.ensure_future(self._pump(up_reader, writer, writer, down=True)),
            ]
            try:
                # The first pump to end (end of stream, a cut, a reset) ends the connection.
                await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for pump in pumps:
                    pump.cancel()
                await asyncio.gather(*pumps, return_exceptions=True)
        except (ConnectionError, OSError):
            pass
        except asyncio.CancelledError:
            if self._server is not None:  # only aclose cancels a handler
                raise
        finally:
            for w in (upstream, writer):
                if w is not None:
                    w.close()
                    with contextlib.suppress(ConnectionError, OSError, asyncio.CancelledError):
                        await w.wait_closed()
            self._handlers.discard(task)

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        client: asyncio.StreamWriter,
        *,
        down: bool,
    ) -> None:
        """Copy *reader* to *writer*, applying the fault of the moment to each chunk."""
        sent = 0  # response bytes forwarded on this connection
        while True:
            data = await reader.read(65536)
            if not data:
                return  # end of stream one way: the whole connection ends (enough for HTTP/1.1)
            fault = self.fault
            if fault.kind == "reset":
                _abort(client)
                return
            if fault.kind == "blackhole":
                continue
            if fault.kind == "latency":
                await asyncio.sleep(fault.seconds)
            if down and fault.kind == "cut":
                room = max(0, fault.after - sent)
                writer.write(data[:room])
                sent += min(room, len(data))
                self.bytes_down += min(room, len(data))
                await writer.drain()
                if room < len(data):
                    return  # cut: both sides are closed
                continue
            if down and fault.kind == "trickle":
                for i in range(len(data)):
                    await asyncio.sleep(fault.seconds)
                    writer.write(data[i : i + 1])
                    sent += 1
                    self.bytes_down += 1
                    await writer.drain()
                continue
            writer.write(data)
            if down:
                sent += len(data)
                self.bytes_down += len(data)
            await writer.drain()

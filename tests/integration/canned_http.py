"""A canned HTTP/1.1 server for the load generators' tests (bench/loadgen.py's client and the native one)."""

from __future__ import annotations

import asyncio
from types import TracebackType


class CannedHttp:
    """Answers the given responses in turn on keep-alive connections, closing a connection after an answer
    that says ``Connection: close`` and once none are left. Records each request (its first line and its
    body) and counts the connections. ``async with CannedHttp(answers) as server``: ``server.port``."""

    def __init__(self, answers: list[bytes]) -> None:
        self.answers = list(answers)
        self.requests: list[tuple[bytes, bytes]] = []  # (request line, body)
        self.connections = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    @property
    def bodies(self) -> list[bytes]:
        return [body for _, body in self.requests]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while self.answers:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.split(b"\r\n")
                length = next(
                    (int(line.split(b":")[1]) for line in lines if line.startswith(b"Content-Length")), 0
                )
                self.requests.append((lines[0], await reader.readexactly(length)))
                answer = self.answers.pop(0)
                writer.write(answer)
                await writer.drain()
                if b"Connection: close" in answer:
                    break
        except asyncio.IncompleteReadError:  # the client closed it
            pass
        writer.close()

    async def __aenter__(self) -> CannedHttp:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

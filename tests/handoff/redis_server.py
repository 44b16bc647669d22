"""Real Redis trouble for tests: a private server to restart, a proxy that loses replies."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from pathlib import Path

import redis

from bot.redis_conn import server_binary
from bot.services import free_port

__all__ = ["LostReplyProxy", "RedisServer"]


class RedisServer:
    """The product's embedded server (Valkey) on a free loopback port, fsyncing every write.

    Args:
        directory: Where its data and log live (kept across restarts).
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Where clients connect."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10) -> None:
        """Start the server (again, on the same port and data) and wait until it answers."""
        assert self.process is None, "already running"
        self.process = subprocess.Popen(
            [
                str(server_binary()),
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--dir", str(self.directory),
                "--appendonly", "yes",
                "--appendfsync", "always",
                "--save", "",
                "--logfile", str(self.directory / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        probe = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1)
        try:
            while True:
                try:
                    probe.ping()
                    return
                except redis.ConnectionError:  # not listening yet, or still loading the AOF
                    if self.process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"the server did not start: {self.log_tail()}") from None
                    time.sleep(0.02)
        finally:
            probe.close()

    def kill(self) -> None:
        """Kill the server at once (SIGKILL): nothing is flushed beyond what fsync wrote."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self.process = None

    def shutdown(self) -> None:
        """Stop the server with SHUTDOWN (clients' connections are closed under them)."""
        assert self.process is not None
        admin = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)
        try:
            admin.execute_command("SHUTDOWN")
        except redis.ConnectionError:
            pass  # the server closes the connection as it exits
        finally:
            admin.close()
        self.process.wait(10)
        self.process = None

    def stop(self) -> None:
        """Stop the server if it runs (end of test)."""
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None

    def log_tail(self, lines: int = 20) -> str:
        """The end of the server's log."""
        log = self.directory / "redis.log"
        return "\n".join(log.read_text().splitlines()[-lines:]) if log.exists() else ""


class LostReplyProxy:
    """A loopback TCP proxy to Redis that can lose one reply, as a dropped connection does.

    After :meth:`lose_next_reply`, the next successful reply (not an error) to a request that
    contains ``command`` is read from Redis, so the command has run, and then the client's
    connection is closed instead of the reply being passed on. The client sees a connection
    error and retries: exactly the case where a retried write could be applied twice.

    Args:
        host: The Redis server's host.
        port: Its port.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.command: bytes | None = None
        self.lost = 0
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[object]] = set()

    @property
    def url(self) -> str:
        """Where clients connect instead of Redis."""
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"redis://127.0.0.1:{port}/0"

    async def start(self) -> None:
        """Listen on a free loopback port."""
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", 0)

    async def close(self) -> None:
        """Stop listening and drop the connections still open."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in self._connections:
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)

    def lose_next_reply(self, command: str) -> None:
        """Lose the next successful reply to ``command`` (``EVALSHA``, ``EXEC``...)."""
        self.command = f"\r\n{command}\r\n".encode()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        task.add_done_callback(self._connections.discard)
        upstream_reader, upstream_writer = await asyncio.open_connection(self.host, self.port)
        last_request = b""

        async def requests() -> None:
            nonlocal last_request
            while data := await reader.read(65536):
                last_request = data
                upstream_writer.write(data)
                await upstream_writer.drain()
            upstream_writer.close()

        async def replies() -> None:
            while data := await upstream_reader.read(65536):
                if self.command and self.command in last_request and not data.startswith(b"-"):
                    self.command = None
                    self.lost += 1
                    break
                writer.write(data)
                await writer.drain()
            writer.close()
            upstream_writer.close()

        await asyncio.gather(requests(), replies(), return_exceptions=True)

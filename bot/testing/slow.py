"""A slow client (slowloris): sends a request a byte at a time over a raw socket."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

__all__ = ["SlowClient"]


@dataclass
class SlowClient:
    """Sends ``first`` at once, then dribbles ``payload``, ``chunk`` bytes every ``every`` s.

    :meth:`run` returns what the server answered and how long it kept the connection: a
    guarded server closes it long before the payload is sent.
    """

    port: int
    payload: bytes
    every: float = 0.2
    chunk: int = 1
    first: bytes = b""

    async def run(self, give_up: float) -> tuple[bytes, float]:
        """Dribble until the server closes the connection or ``give_up`` seconds pass.

        Returns:
            (everything the server sent, seconds until it closed; ``give_up`` if it never did)
        """
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        started = time.monotonic()

        async def dribble() -> None:
            try:
                writer.write(self.first)
                for index in range(0, len(self.payload), self.chunk):
                    writer.write(self.payload[index : index + self.chunk])
                    await writer.drain()
                    await asyncio.sleep(self.every)
                await asyncio.sleep(give_up)
            except (ConnectionError, OSError):
                return

        sender = asyncio.create_task(dribble())
        received = b""
        with contextlib.suppress(TimeoutError, ConnectionError, OSError):
            async with asyncio.timeout(give_up):
                while chunk := await reader.read(4096):
                    received += chunk
        held = time.monotonic() - started
        sender.cancel()
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()
        return received, min(held, give_up)

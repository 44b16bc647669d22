"""A minimal SMTP server on loopback for tests of e-mailed reports (no extra package).

:class:`SmtpStandIn` speaks enough of RFC 5321 for :mod:`smtplib` (EHLO/HELO, MAIL, RCPT,
DATA, RSET, NOOP, QUIT), keeps each message parsed (:attr:`SmtpStandIn.messages`) and can
refuse every transaction with a given reply code (``fail_with = 451`` asks to retry later,
``554`` refuses).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
from email.message import EmailMessage

__all__ = ["SmtpStandIn"]


class SmtpStandIn:
    """An SMTP server on an ephemeral 127.0.0.1 port (``async with SmtpStandIn() as smtp``)."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.fail_with = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> SmtpStandIn:
        self._server = await asyncio.start_server(self._session, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def reply(line: str) -> None:
            writer.write(f"{line}\r\n".encode())
            await writer.drain()

        await reply("220 stand-in ESMTP")
        try:
            while line := await reader.readline():
                verb = line.decode(errors="replace").strip().split(" ", 1)[0].upper()
                if verb in ("EHLO", "HELO"):
                    await reply("250 stand-in")
                elif verb in ("MAIL", "RCPT"):
                    if self.fail_with:
                        await reply(f"{self.fail_with} injected failure")
                    else:
                        await reply("250 OK")
                elif verb == "DATA":
                    await reply("354 end with <CRLF>.<CRLF>")
                    data = bytearray()
                    while (chunk := await reader.readline()) not in (b".\r\n", b""):
                        data += chunk[1:] if chunk.startswith(b"..") else chunk
                    parsed = email.message_from_bytes(bytes(data), policy=email.policy.default)
                    assert isinstance(parsed, EmailMessage)
                    self.messages.append(parsed)
                    await reply("250 queued")
                elif verb == "QUIT":
                    await reply("221 bye")
                    break
                else:  # RSET, NOOP and anything else
                    await reply("250 OK")
        finally:
            writer.close()

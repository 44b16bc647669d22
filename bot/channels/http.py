"""JSON-over-HTTP sending shared by the adapters without a vendor SDK (Messenger, Twitter).

Each adapter owns one :class:`aiohttp.ClientSession` (created on first send inside the running
loop, or injected by tests) and classifies the provider's answer into a :class:`SendResult`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp

from bot.channels.base import SendResult, retry_after_seconds

__all__ = ["Classifier", "JsonSender"]

Classifier = Callable[[int, Mapping[str, Any], Mapping[str, str]], SendResult | None]
"""Maps (status, JSON body, headers) of a failed call to a result; None: default rules."""


class JsonSender:
    """POSTs JSON and classifies the answer: 2xx sent, 429/5xx/timeouts retry, else failed.

    Args:
        timeout: Seconds for the whole request.
        session: A session to use (the caller closes it); default: one owned by this sender.
    """

    def __init__(self, timeout: float = 10.0, session: aiohttp.ClientSession | None = None):
        self.timeout = timeout
        self._session = session
        self._owned = session is None

    def session(self) -> aiohttp.ClientSession:
        """The HTTP session (created inside the running event loop on first use)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
            self._owned = True
        return self._session

    async def post(
        self,
        url: str,
        payload: Mapping[str, Any],
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        id_of: Callable[[Mapping[str, Any]], str] = lambda body: "",
        classify: Classifier | None = None,
    ) -> SendResult:
        """Send ``payload``; never raises for HTTP or network failures."""
        try:
            async with self.session().post(
                url, json=payload, headers=headers, params=params
            ) as response:
                text = await response.text()
                status = response.status
                answer_headers = dict(response.headers)
        except (TimeoutError, aiohttp.ClientError) as exc:
            return SendResult("retry", error=f"network: {type(exc).__name__}")
        try:
            body = json.loads(text) if text else {}
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        if 200 <= status < 300:
            return SendResult("sent", provider_id=id_of(body))
        if classify is not None:
            decided = classify(status, body, answer_headers)
            if decided is not None:
                return decided
        retry_after = retry_after_seconds(answer_headers.get("Retry-After"))
        if status == 429 or status >= 500:
            return SendResult("retry", error=f"HTTP {status}", retry_after=retry_after)
        return SendResult("failed", error=f"HTTP {status}")

    async def aclose(self) -> None:
        """Close the session if this sender created it."""
        if self._owned and self._session is not None:
            await self._session.close()
        self._session = None

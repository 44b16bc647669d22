"""Delivery state of our outbound messages: queued, sent, delivered, read, failed.

Who calls what:

- The outbox, when a provider accepts a send: ``sent_call(conversation_id, provider_id,
  entry=outbox_entry_id, text=reply_text, namespace=ns)`` (Telegram and X report nothing
  later, so their last state is ``sent``); when a send fails for good: ``failed_call(
  conversation_id, entry=outbox_entry_id, error=..., code=..., namespace=ns)``, which records
  the state only: the outbox keeps writing its own row to ``{ns}:outbox:failed``. It adds
  the call to the transaction that finishes the send (:func:`queue`); elsewhere (tests, a
  one-off) ``await record(redis, call)`` runs it on its own.
- The webhook, for each :class:`~bot.channels.base.Receipt` an adapter read (Twilio status
  callbacks, Messenger and Instagram ``delivery``/``read``): ``await apply(redis, receipt,
  namespace=ns)``. A receipt that turns a message ``failed`` (Twilio ``failed`` or
  ``undelivered``) also appends a row to ``{ns}:outbox:failed``, in the same script, so an
  agent sees it in :func:`bot.channels.outbox.failed_sends`.
- The agent console, next to each reply: ``await states(redis, conversation_id,
  namespace=ns)`` (oldest first; match a reply by ``entry`` or ``provider_id``).

A state only moves forward (queued → sent → delivered → read; failed is final), so receipts
arriving out of order or twice, or before the send was recorded, never move it back.

Keys (``bot.keys``): one hash per conversation, ``{ns}:delivery:{conversation_id}``, field
the provider's message id (``entry:<outbox id>`` for a send that never got one), value a
JSON state; it expires :data:`KEEP_SECONDS` after its last change.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

import redis.asyncio

from bot.channels.base import DELIVERY_STATUSES, DeliveryStatus, Receipt
from bot.keys import key
from bot.keys import namespace as default_namespace

__all__ = [
    "KEEP_SECONDS",
    "Call",
    "DeliveryState",
    "apply",
    "delivery_key",
    "failed_call",
    "failed_key",
    "queue",
    "record",
    "sent_call",
    "states",
]

KEEP_SECONDS = 30 * 24 * 3600
"""How long a conversation's delivery states are kept after the last change."""
_RANK = {status: rank for rank, status in enumerate(DELIVERY_STATUSES)}
_TEXT_KEPT = 500
_CLOCK_SLACK = 2.0
"""Seconds of clock difference allowed when a watermark is compared with our send time."""

# KEYS: state hash, failed-sends stream. ARGV: status, rank, at, ttl, extra JSON (filled
# in where empty), watermark ('' for none), surface JSON (the failed-sends row, '' for
# none), then the provider ids. With a watermark, every message sent up to it moves too.
_APPLY = """
local status, rank, at, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local extra = cjson.decode(ARGV[5])
local watermark = tonumber(ARGV[6])
local fields = {}
for i = 8, #ARGV do fields[#fields + 1] = ARGV[i] end
if watermark then
  local all = redis.call('HGETALL', KEYS[1])
  for i = 1, #all, 2 do
    local state = cjson.decode(all[i + 1])
    if state.sent_at and state.sent_at ~= cjson.null and state.sent_at <= watermark then
      fields[#fields + 1] = all[i]
    end
  end
end
local changed = {}
for _, field in ipairs(fields) do
  local current = redis.call('HGET', KEYS[1], field)
  local state = {}
  if current then state = cjson.decode(current) end
  local moved = (state.rank == nil) or (rank > state.rank)
  if moved then
    state.status = status
    state.rank = rank
    state.updated_at = at
  end
  for name, value in pairs(extra) do
    if state[name] == nil or state[name] == '' or state[name] == cjson.null then
      state[name] = value
    end
  end
  if moved and status == 'failed' then
    state.error = extra.error or state.error
    state.code = extra.code or state.code
  end
  redis.call('HSET', KEYS[1], field, cjson.encode(state))
  if moved then
    changed[#changed + 1] = field
    if status == 'failed' and ARGV[7] ~= '' then
      local row = cjson.decode(ARGV[7])
      local args = {'provider_id', field, 'text', state.text or '', 'entry', state.entry or ''}
      for name, value in pairs(row) do
        args[#args + 1] = name
        args[#args + 1] = tostring(value)
      end
      redis.call('XADD', KEYS[2], '*', unpack(args))
    end
  end
end
redis.call('EXPIRE', KEYS[1], ttl)
return changed
"""
_APPLY_SHA = hashlib.sha1(_APPLY.encode()).hexdigest()  # noqa: S324 - Redis' script digest


def delivery_key(ns: str, conversation_id: str) -> str:
    """The hash of one conversation's delivery states."""
    return key(ns, "delivery", conversation_id)


def failed_key(ns: str) -> str:
    """The failed-sends stream agents see (shared with the outbox)."""
    return key(ns, "outbox", "failed")


@dataclass(frozen=True)
class DeliveryState:
    """Where one of our messages is.

    Attributes:
        provider_id: The provider's message id (``entry:<id>`` when it never got one).
        status: ``queued``, ``sent``, ``delivered``, ``read`` or ``failed``.
        updated_at: When the status last moved (Unix seconds).
        sent_at: When the provider accepted it (None when only a receipt is known).
        entry: The outbox entry it was sent from ('' when unknown).
        error: Why it failed.
        code: The provider's error code.
        text: The start of the reply's text, when :func:`sent_call` recorded it ('' otherwise).
    """

    provider_id: str
    status: DeliveryStatus
    updated_at: float
    sent_at: float | None = None
    entry: str = ""
    error: str = ""
    code: str = ""
    text: str = ""


Call = tuple[list[str], list[Any]]
"""The keys and arguments of one run of the state script."""


def _call(
    conversation_id: str,
    fields: list[str],
    status: DeliveryStatus,
    at: float,
    extra: dict[str, Any],
    *,
    namespace: str | None,
    watermark: float | None = None,
    surface: dict[str, str] | None = None,
) -> Call:
    ns = namespace or default_namespace()
    keys = [delivery_key(ns, conversation_id), failed_key(ns)]
    args = [
        status,
        _RANK[status],
        at,
        KEEP_SECONDS,
        json.dumps(extra),
        "" if watermark is None else watermark + _CLOCK_SLACK,
        json.dumps(surface) if surface else "",
        *fields,
    ]
    return keys, args


def queue(pipe: Any, call: Call) -> None:
    """Add a recording (:func:`sent_call`, :func:`failed_call`) to a pipeline by digest.

    The outbox records the state in the transaction that finishes the send. Its result is a
    ``NoScriptError`` until the script was first run (:func:`record` loads it) or after Redis
    lost it (a restart): then :func:`record` it.
    """
    keys, args = call
    pipe.evalsha(_APPLY_SHA, len(keys), *keys, *args)


async def record(client: redis.asyncio.Redis, call: Call) -> list[str]:
    """Run a recording on its own (loading the script when needed); return what moved."""
    keys, args = call
    changed: Any = await client.register_script(_APPLY)(keys=keys, args=args)
    return [str(item) for item in changed or ()]


def sent_call(
    conversation_id: str,
    provider_id: str,
    *,
    entry: str = "",
    text: str = "",
    status: DeliveryStatus = "sent",
    at: float | None = None,
    namespace: str | None = None,
) -> Call:
    """The recording of a send the provider accepted (its id is ``provider_id``).

    Args:
        conversation_id: ``"{channel}:{account}:{sender}"`` of the resident.
        provider_id: The provider's message id from :class:`~bot.channels.base.SendResult`.
        entry: The outbox entry id (lets the console match the reply it queued).
        text: The reply's text (shown to agents if a receipt later says it failed).
        status: ``sent``, or ``queued`` when the provider says it only queued it.
        at: Unix seconds (default: now).
        namespace: Key namespace (default: this process').
    """
    moment = time.time() if at is None else at
    return _call(
        conversation_id,
        [provider_id or f"entry:{entry}"],
        status,
        moment,
        {"sent_at": moment, "entry": entry, "text": text[:_TEXT_KEPT]},
        namespace=namespace,
    )


def failed_call(
    conversation_id: str,
    *,
    entry: str,
    error: str,
    code: str = "",
    provider_id: str = "",
    at: float | None = None,
    namespace: str | None = None,
) -> Call:
    """The recording of a send that failed for good (state only: the outbox surfaces it itself).

    Args:
        conversation_id: The resident's conversation.
        entry: The outbox entry id.
        error: Why (no message text).
        code: The provider's error code.
        provider_id: The provider's id, if the provider accepted it before failing.
        at: Unix seconds (default: now).
        namespace: Key namespace (default: this process').
    """
    moment = time.time() if at is None else at
    return _call(
        conversation_id,
        [provider_id or f"entry:{entry}"],
        "failed",
        moment,
        {"entry": entry, "error": error, "code": code},
        namespace=namespace,
    )


async def apply(
    client: redis.asyncio.Redis, receipt: Receipt, *, namespace: str | None = None
) -> list[str]:
    """Apply a provider's receipt; return the ids of the messages whose state moved.

    A receipt that makes a message ``failed`` also appends it to ``{ns}:outbox:failed``
    (with the reply's text and outbox entry when :func:`sent_call` recorded them), once.
    """
    surface = None
    if receipt.status == "failed":
        surface = {
            "conversation_id": receipt.conversation_id,
            "channel": receipt.channel,
            "account": receipt.account,
            "recipient": receipt.recipient,
            "error": receipt.error or "the provider could not deliver the message",
            "code": receipt.code,
            "failed_at": str(receipt.at),
            "source": "receipt",
        }
    extra: dict[str, Any] = {}
    if receipt.status == "failed":
        extra = {"error": receipt.error, "code": receipt.code}
    call = _call(
        receipt.conversation_id,
        list(receipt.provider_ids),
        receipt.status,
        receipt.at,
        extra,
        namespace=namespace,
        watermark=receipt.watermark,
        surface=surface,
    )
    return await record(client, call)


def _state(provider_id: str, raw: str) -> DeliveryState:
    data = json.loads(raw)
    sent_at = data.get("sent_at")
    return DeliveryState(
        provider_id=provider_id,
        status=data["status"],
        updated_at=float(data.get("updated_at") or 0),
        sent_at=float(sent_at) if isinstance(sent_at, int | float) else None,
        entry=str(data.get("entry") or ""),
        error=str(data.get("error") or ""),
        code=str(data.get("code") or ""),
        text=str(data.get("text") or ""),
    )


async def states(
    client: redis.asyncio.Redis, conversation_id: str, *, namespace: str | None = None
) -> list[DeliveryState]:
    """Every known state of the conversation's messages, oldest send first."""
    ns = namespace or default_namespace()
    found: dict[str, str] = await client.hgetall(delivery_key(ns, conversation_id))
    listed = [_state(provider_id, raw) for provider_id, raw in found.items()]
    return sorted(listed, key=lambda state: (state.sent_at or state.updated_at, state.provider_id))

"""The agent console (``/agent/``): the live handoff queue and the case view.

Agents see only their teams' cases (admins see every team). From a case they claim it (a lease
in Redis, so two agents never work on the same case), reply on the resident's own channel
(through :class:`~bot.handoff.replies.ReplySender`, respecting the messaging window), add
internal notes, reassign it to another team, resolve it, or give the conversation back to the
bot (through the Rasa HTTP API). Every action is written to the audit log, without the
resident's words. Editors maintain the canned responses under ``/agent/canned``.

Each reply on the case page shows its delivery state (queued, sent, delivered, read, not
delivered: :mod:`bot.channels.delivery`), a failed delivery puts a notice on the case and a
marker in the queue, and every agent page shows a banner while replies are not flowing
(:func:`bot.channels.health.channel_health`) and another while problem reports wait for the
back office (:func:`bot.reports.waiting.waiting_problems`).

Environment: ``RASA_URL`` / ``RASA_AUTH_TOKEN`` (return to bot), ``COUNCIL_SLA_FILE`` (JSON
targets, see :meth:`SlaPolicy.from_mapping`), ``COUNCIL_SLA_WEBHOOK`` and
``COUNCIL_SAFEGUARDING_WEBHOOK`` (breach and out-of-hours alert hooks; the console checks
every minute when one is set).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from bot import settings
from bot.channels import delivery
from bot.channels.delivery import DeliveryState
from bot.channels.health import channel_health
from bot.channels.window import window_state
from bot.handoff.canned import CannedResponses
from bot.handoff.queue import HandoffQueue
from bot.handoff.record import TEAMS, HandoffRecord
from bot.handoff.replies import OutboundReply, OutboxSender, ReplySender, reply_options
from bot.handoff.resume import RasaResumer, Resumer
from bot.handoff.sla import Breach, SlaMonitor, SlaPolicy, WebhookNotifier, evaluate
from bot.keys import key
from bot.reports.waiting import waiting_problems
from bot.web import audit
from bot.web.accounts import User
from bot.web.app import (
    NAMESPACE,
    REDIS,
    SESSIONS,
    AppKey,
    ConsoleApp,
    add_nav,
    app_of,
    current_session,
    current_user,
    read_form,
    render,
    require_role,
)
from bot.webchat import status as webchat_status

__all__ = [
    "CANNED",
    "DELIVERY_LABELS",
    "LEASE_SECONDS",
    "QUEUE",
    "QUEUE_PAGE_SIZE",
    "RESUME",
    "SENDER",
    "SLA_POLICY",
    "match_deliveries",
    "setup",
]

logger = logging.getLogger(__name__)

QUEUE = AppKey[HandoffQueue]("agent.queue")
SENDER = AppKey[ReplySender]("agent.sender")
RESUME: AppKey[Resumer] = AppKey("agent.resume")
SLA_POLICY = AppKey[SlaPolicy]("agent.sla")
CANNED = AppKey[CannedResponses]("agent.canned")

LEASE_SECONDS = 15 * 60
QUEUE_PAGE_SIZE = 50
_MAX_TEXT = 4000

DELIVERY_LABELS = {
    # status: (symbol beside the words, the words: never the symbol or a colour alone)
    "queued": ("…", "queued"),
    "sent": ("✓", "sent"),
    "delivered": ("✓✓", "delivered"),
    "read": ("✓✓", "read"),
    "failed": ("⚠", "not delivered"),
}
"""How the case page shows each delivery state."""
_DELIVERY_TEXT_KEPT = 500  # bot.channels.delivery keeps the start of each reply's text
_QUEUED_BEFORE = 5.0  # seconds an outbox entry may be older than the transcript says (clocks)
_QUEUED_AFTER = 120.0  # ...and younger (the bot's replies are queued once Rasa has answered)


def _me(request: Request) -> User:
    user = current_user(request)
    assert user is not None  # require_role guarantees it
    return user


def _teams(user: User) -> list[str]:
    """Teams whose cases ``user`` may see (admins: all)."""
    return list(TEAMS) if user.has_role("admin") else list(user.teams)


def _text(form: FormData, name: str) -> str:
    value = form.get(name, "")
    return value.strip()[:_MAX_TEXT] if isinstance(value, str) else ""


def _now(request: Request) -> datetime:
    return app_of(request)[QUEUE].clock()


async def _window(request: Request, record: HandoffRecord) -> dict[str, Any] | None:
    """The messaging window now: live from the channel's last inbound time when known."""
    live = await window_state(
        app_of(request)[REDIS],
        record.conversation_id,
        namespace=app_of(request)[NAMESPACE],
        now=_now(request).timestamp(),
    )
    if live is not None and live["last_inbound_at"] is not None:
        return live
    return record.window  # the state written with the handoff (no inbound recorded since)


async def _case(request: Request) -> HandoffRecord:
    """The case named in the URL, if the user's teams may see it (404 / 403 otherwise)."""
    record = await app_of(request)[QUEUE].get(str(request.path_params["case_id"]))
    if record is None:
        raise HTTPException(404, "There is no such case.")
    if record.team not in _teams(_me(request)):
        raise HTTPException(403, "This case belongs to a team you are not in.")
    return record


def _whole_number(request: Request, name: str, default: int, least: int) -> int:
    """A whole-number query parameter of at least ``least`` (400 otherwise)."""
    raw = request.query_params.get(name, "")
    try:
        value = int(raw) if raw else default
    except ValueError:
        raise HTTPException(400, f"{name} must be a whole number.") from None
    if value < least:
        raise HTTPException(400, f"{name} must be {least} or more.")
    return value


async def _queue_page(request: Request) -> dict[str, Any]:
    """One page of the queue (``?page=N``, past the end: the last) and the true total."""
    teams = _teams(_me(request))
    wanted = _whole_number(request, "page", 1, 1)
    total = await app_of(request)[QUEUE].count_open_for(teams)
    pages = max(math.ceil(total / QUEUE_PAGE_SIZE), 1)
    page = min(wanted, pages)
    offset = (page - 1) * QUEUE_PAGE_SIZE
    rows = await _queue_rows(request, teams, offset)
    return {
        "count": total,
        "page": page,
        "pages": pages,
        "first": offset + 1 if rows else 0,
        "cases": rows,
    }


async def _queue_rows(request: Request, teams: list[str], offset: int) -> list[dict[str, Any]]:
    queue = app_of(request)[QUEUE]
    records = await queue.list_open_for(teams, offset, QUEUE_PAGE_SIZE)
    ids = [r.case_id for r in records]
    holders = await queue.holders(ids)
    now = _now(request)
    policy = app_of(request)[SLA_POLICY]
    states = await asyncio.gather(*(_states(request, record) for record in records))
    rows = []
    for record, meta, sent in zip(records, await queue.metas(ids), states, strict=True):
        first, resolution = evaluate(policy, record, meta, now)
        due = first if first.met_at is None else resolution
        rows.append(
            {
                "case_id": record.case_id,
                "url": f"/agent/cases/{record.case_id}",
                "priority": record.priority,
                "team": record.team,
                "reason": record.reason.replace("_", " "),
                "topic": record.topic,
                "channel": record.channel,
                "language": record.language,
                "name": record.display_name or record.sender,
                "created_at": record.created_at,
                "waiting": _ago(datetime.fromisoformat(record.created_at), now),
                "holder": holders.get(record.case_id, ""),
                "sla": f"{due.kind.replace('_', ' ')}: {due.left_text}",
                "breached": first.breached or resolution.breached,
                "delivery_failed": bool(_failed_since(sent, record)),
            }
        )
    return rows


def _seconds(moment: Any) -> float | None:
    try:
        return datetime.fromisoformat(str(moment)).timestamp()
    except ValueError:
        return None


def _queued_at(state: DeliveryState) -> float | None:
    """When the reply was queued: its outbox entry id starts with the Unix milliseconds."""
    stamp = state.entry.split("-", 1)[0]
    return int(stamp) / 1000 if stamp.isdigit() else None


def _shown(state: DeliveryState | None, role: str) -> dict[str, str] | None:
    status = state.status if state is not None else "queued"
    if state is None and role != "agent":
        return None  # a resident's message, or a bot reply from before delivery states
    symbol, words = DELIVERY_LABELS[status]
    error = state.error if state is not None and status == "failed" else ""
    return {"status": status, "symbol": symbol, "label": words, "error": error}


def _matched(
    transcript: list[dict[str, Any]], states: list[DeliveryState]
) -> list[DeliveryState | None]:
    unused = list(states)
    found: list[DeliveryState | None] = [None] * len(transcript)
    outbound = [i for i, m in enumerate(transcript) if m.get("role") in ("bot", "agent")]
    by_time = []
    for index in outbound:
        text = str(transcript[index].get("text") or "")[:_DELIVERY_TEXT_KEPT]
        same = next((state for state in unused if state.text and state.text == text), None)
        if same is None:
            by_time.append(index)
            continue
        unused.remove(same)
        found[index] = same
    for index in by_time:
        at = _seconds(transcript[index].get("at"))
        near = [
            (abs(queued - at), state)
            for state in unused
            if not state.text
            and at is not None
            and (queued := _queued_at(state)) is not None
            and at - _QUEUED_BEFORE <= queued <= at + _QUEUED_AFTER
        ]
        if near:
            best = min(near, key=lambda pair: pair[0])[1]
            unused.remove(best)
            found[index] = best
    return found


def match_deliveries(
    transcript: list[dict[str, Any]], states: list[DeliveryState]
) -> list[dict[str, str] | None]:
    """Each transcript message's delivery state as the case page shows it (None: not ours).

    A reply is matched to the oldest unmatched state with its text; a state without text (a
    send that failed before the provider took it) to the reply queued nearest in time. An
    agent's reply with no state yet is ``queued`` (it waits in the outbox).
    """
    return _show(_matched(transcript, states), transcript)


def _show(
    matched: list[DeliveryState | None], transcript: list[dict[str, Any]]
) -> list[dict[str, str] | None]:
    return [
        _shown(state, str(message.get("role")))
        for state, message in zip(matched, transcript, strict=True)
    ]


def _failed_since(states: list[DeliveryState], record: HandoffRecord) -> list[DeliveryState]:
    """The deliveries that failed since the case was opened."""
    opened = _seconds(record.created_at) or 0.0
    return [s for s in states if s.status == "failed" and s.updated_at >= opened]


async def _states(request: Request, record: HandoffRecord) -> list[DeliveryState]:
    app = app_of(request)
    return await delivery.states(app[REDIS], record.conversation_id, namespace=app[NAMESPACE])


async def _deliveries(
    request: Request, record: HandoffRecord, transcript: list[dict[str, Any]]
) -> dict[str, Any]:
    """Delivery state per transcript message, and the failures an agent must see."""
    states = await _states(request, record)
    matched = _matched(transcript, states)
    failures = []
    for state in _failed_since(states, record):
        index = next((i for i, found in enumerate(matched) if found is state), None)
        reply = state.text or (str(transcript[index]["text"]) if index is not None else "")
        failures.append(
            {
                "text": reply,
                "error": state.error or "the provider could not deliver it",
                "code": state.code,
                "at": datetime.fromtimestamp(state.updated_at, UTC).strftime("%d %b %H:%M"),
            }
        )
    return {"deliveries": _show(matched, transcript), "failures": failures}


async def _channel_problems(request: Request) -> list[str]:
    """Why replies are not flowing ([] when they are, or when no channel ever ran here)."""
    client, ns = app_of(request)[REDIS], app_of(request)[NAMESPACE]
    if not await client.exists(key(ns, "inbox"), key(ns, "outbox")):
        return []  # a console without channels: nothing to warn about
    report = await channel_health(client, ns)
    return [str(problem) for problem in report["problems"]]


def _ago(then: datetime, now: datetime) -> str:
    minutes = max(int((now - then).total_seconds() // 60), 0)
    if minutes < 60:
        return f"{minutes}m"
    return f"{minutes // 60}h {minutes % 60}m" if minutes < 1440 else f"{minutes // 1440}d"


@require_role("agent")
async def queue_page(request: Request) -> Response:
    """The live queue of the agent's teams (refreshed by ``/static/agent/agent.js``)."""
    shown = await _queue_page(request)
    context = {
        "rows": shown["cases"],
        "total": shown["count"],
        "page": shown["page"],
        "pages": shown["pages"],
        "first": shown["first"],
        "teams": _teams(_me(request)),
        "channel_problems": await _channel_problems(request),
        "report_problems": await _report_problems(request),
    }
    return render(request, "agent/queue.html", context)


@require_role("agent")
async def channels_api(request: Request) -> Response:
    """Why replies are not flowing, for the banner on agent pages (no personal data)."""
    return JSONResponse({"problems": await _channel_problems(request)})


async def _report_problems(request: Request) -> list[str]:
    """Problem reports the back office has not taken for a while ([] when none)."""
    return await waiting_problems(app_of(request)[REDIS], app_of(request)[NAMESPACE])


@require_role("agent")
async def reports_api(request: Request) -> Response:
    """Reports still being retried, for the banner on agent pages (no personal data)."""
    return JSONResponse({"problems": await _report_problems(request)})


@require_role("agent")
async def queue_api(request: Request) -> Response:
    """One page of the queue as JSON for the live page (``count`` is the true total)."""
    return JSONResponse(await _queue_page(request))


def _status_text(record: HandoffRecord, holder: str | None) -> str:
    """The case's status as the case page words it (``open — held by ann``)."""
    status = record.status.replace("_", " ")
    return f"{status} — held by {holder}" if holder else status


@require_role("agent")
async def case_updates(request: Request) -> Response:
    """What changed on a case for its live page: messages after the first ``after``, status."""
    record = await _case(request)
    after = _whole_number(request, "after", 0, 0)
    queue = app_of(request)[QUEUE]
    transcript = await queue.transcript(record.case_id)
    holder = await queue.holder(record.case_id)
    return JSONResponse(
        {
            "status": record.status,
            "status_text": _status_text(record, holder),
            "holder": holder or "",
            "total": len(transcript),
            "messages": transcript[after:],
        }
    )


@require_role("agent")
async def case_deliveries(request: Request) -> Response:
    """The delivery state of each transcript message, and the failed deliveries."""
    record = await _case(request)
    transcript = await app_of(request)[QUEUE].transcript(record.case_id)
    return JSONResponse(await _deliveries(request, record, transcript))


async def _case_page(
    request: Request, record: HandoffRecord, *, error: str = "", status: int = 200
) -> Response:
    queue = app_of(request)[QUEUE]
    now = _now(request)
    meta = await queue.meta(record.case_id)
    earlier = await queue.earlier_cases(record)
    me = _me(request)
    window = await _window(request, record)
    transcript = await queue.transcript(record.case_id)
    shown = await _deliveries(request, record, transcript)
    return render(
        request,
        "agent/case.html",
        {
            "case": record,
            "transcript": transcript,
            "deliveries": shown["deliveries"],
            "delivery_failures": shown["failures"],
            "channel_problems": await _channel_problems(request),
            "report_problems": await _report_problems(request),
            "notes": await queue.notes(record.case_id),
            "holder": await queue.holder(record.case_id),
            "me": me.username,
            "sla": evaluate(app_of(request)[SLA_POLICY], record, meta, now),
            "window": window,
            "options": reply_options(record.channel, window, now),
            "earlier": [r for r in earlier if r.team in _teams(me)],
            "earlier_hidden": sum(1 for r in earlier if r.team not in _teams(me)),
            "canned": await app_of(request)[CANNED].all(),
            "teams": [t for t in TEAMS if t != record.team],
            "done": request.query_params.get("done", ""),
            "error": error,
        },
        status=status,
    )


@require_role("agent")
async def case_page(request: Request) -> Response:
    """A case with everything the agent needs to answer."""
    record = await _case(request)
    await audit.record(request, "handoff.view", "handoff", record.case_id)
    return await _case_page(request, record)


def _done(record: HandoffRecord, what: str) -> Response:
    return RedirectResponse(f"/agent/cases/{record.case_id}?done={what}", status_code=302)


async def _hold(request: Request, record: HandoffRecord) -> None:
    """Claim (or renew) the case for the user before acting; 409 if it is closed or taken."""
    if record.status != "open":
        raise HTTPException(409, "This case is closed.")
    me = _me(request).username
    if await app_of(request)[QUEUE].claim(record.case_id, me, LEASE_SECONDS) is None:
        holder = await app_of(request)[QUEUE].holder(record.case_id)
        raise HTTPException(409, f"{holder or 'Another agent'} is working on this case.")


async def _tell_resident(request: Request, record: HandoffRecord) -> None:
    """Show the resident who answers now, where their channel shows it (the web chat)."""
    app = app_of(request)
    await webchat_status.refresh(app[REDIS], app[NAMESPACE], record.conversation_id)


@require_role("agent")
async def claim(request: Request) -> Response:
    """Take the case (a lease that expires if the agent goes away)."""
    record = await _case(request)
    await _hold(request, record)
    await audit.record(request, "handoff.claim", "handoff", record.case_id)
    await _tell_resident(request, record)
    return _done(record, "claimed")


@require_role("agent")
async def typing_api(request: Request) -> Response:
    """The agent is typing a reply (the case page posts it at most every few seconds)."""
    record = await _case(request)
    if record.status == "open":
        app = app_of(request)
        await webchat_status.typing(
            app[REDIS], app[NAMESPACE], record.conversation_id, _me(request).username
        )
    return Response(status_code=204)


@require_role("agent")
async def release(request: Request) -> Response:
    """Give the case back to the queue."""
    record = await _case(request)
    if await app_of(request)[QUEUE].release(record.case_id, _me(request).username):
        await audit.record(request, "handoff.release", "handoff", record.case_id)
        await _tell_resident(request, record)
    return _done(record, "released")


@require_role("agent")
async def reply(request: Request) -> Response:
    """Send a reply on the resident's channel (or its allowed alternative)."""
    record = await _case(request)
    form = await read_form(request)
    text = _text(form, "text")
    if not text:
        return await _case_page(request, record, error="Write a reply first.", status=422)
    await _hold(request, record)
    options = reply_options(record.channel, await _window(request, record), _now(request))
    alternative = _text(form, "send_as") == "alternative"
    if not options.free_text and not (alternative and options.tag):
        return await _case_page(request, record, error=options.explanation, status=409)
    tag = options.tag if not options.free_text else None
    sent_id = await app_of(request)[SENDER].send(OutboundReply.for_record(record, text, tag))
    await app_of(request)[QUEUE].append_message(record.conversation_id, "agent", text)
    detail = {"outbox_id": sent_id, "tag": tag or "", "characters": len(text)}
    await audit.record(request, "handoff.reply", "handoff", record.case_id, detail)
    return _done(record, "sent")


@require_role("agent")
async def note(request: Request) -> Response:
    """Add an internal note."""
    record = await _case(request)
    text = _text(await read_form(request), "text")
    if not text:
        return await _case_page(request, record, error="Write the note first.", status=422)
    await app_of(request)[QUEUE].add_note(record.case_id, _me(request).username, text)
    await audit.record(request, "handoff.note", "handoff", record.case_id)
    return _done(record, "noted")


@require_role("agent")
async def resolve(request: Request) -> Response:
    """Close the case as answered."""
    record = await _case(request)
    await _hold(request, record)
    await app_of(request)[QUEUE].resolve(record.case_id, _me(request).username)
    await audit.record(request, "handoff.resolve", "handoff", record.case_id)
    await _tell_resident(request, record)
    return _done(record, "resolved")


@require_role("agent")
async def return_to_bot(request: Request) -> Response:
    """Give the conversation back to the bot, which answers the resident's next message."""
    record = await _case(request)
    await _hold(request, record)
    try:
        await app_of(request)[RESUME](record.conversation_id)
    except (aiohttp.ClientError, TimeoutError) as exc:
        logger.warning("could not resume %s: %s", record.conversation_id, exc)
        message = "The bot could not be reached, so the case stays open. Try again shortly."
        return await _case_page(request, record, error=message, status=502)
    await app_of(request)[QUEUE].return_to_bot(record.case_id, _me(request).username)
    await audit.record(request, "handoff.return_to_bot", "handoff", record.case_id)
    await _tell_resident(request, record)
    return _done(record, "returned-to-bot")


@require_role("agent")
async def reassign(request: Request) -> Response:
    """Move the case to another team's queue."""
    record = await _case(request)
    team = _text(await read_form(request), "team")
    if team not in TEAMS:
        raise HTTPException(400, "Choose one of the teams.")
    if not await app_of(request)[QUEUE].reassign(record.case_id, team):
        raise HTTPException(409, "This case is closed.")
    detail = {"from": record.team, "to": team}
    await audit.record(request, "handoff.reassign", "handoff", record.case_id, detail)
    if team not in _teams(_me(request)):
        return RedirectResponse("/agent/?done=reassigned", status_code=302)
    return _done(record, "reassigned")


def _session_state(request: Request) -> Response:
    """How long the user's session lasts if nothing more happens (the timeout warning)."""
    store = app_of(request)[SESSIONS]
    session = current_session(request)
    assert session is not None  # require_role guarantees it
    ends_at, extendable = store.ends_at(session)
    left = max(int(ends_at - store.now()), 0)
    return JSONResponse({"expires_in": left, "extendable": extendable})


@require_role("agent")
async def session_status(request: Request) -> Response:
    """Seconds the session has left. Asked with ``X-Council-Background: 1`` it extends nothing."""
    return _session_state(request)


@require_role("agent")
async def session_extend(request: Request) -> Response:
    """Stay signed in (WCAG 2.2.1): this request is activity, so the idle time starts again."""
    return _session_state(request)


@require_role("editor")
async def canned_page(request: Request) -> Response:
    """List and add canned responses (editors)."""
    canned = app_of(request)[CANNED]
    if request.method == "POST":
        form = await read_form(request)
        title, text = _text(form, "title")[:100], _text(form, "text")
        if not title or not text:
            context = {"responses": await canned.all(), "error": "Give a title and a text."}
            return render(request, "agent/canned.html", context, status=422)
        added = await canned.add(title, text)
        await audit.record(request, "canned.create", "canned_response", added.response_id)
        return RedirectResponse("/agent/canned?done=added", status_code=302)
    context = {"responses": await canned.all(), "done": request.query_params.get("done", "")}
    return render(request, "agent/canned.html", context)


@require_role("editor")
async def canned_delete(request: Request) -> Response:
    """Delete a canned response (editors)."""
    response_id = str(request.path_params["response_id"])
    if not await app_of(request)[CANNED].remove(response_id):
        raise HTTPException(404, "There is no such canned response.")
    await audit.record(request, "canned.delete", "canned_response", response_id)
    return RedirectResponse("/agent/canned?done=deleted", status_code=302)


@contextlib.asynccontextmanager
async def _sla_monitor(app: ConsoleApp) -> AsyncIterator[None]:
    # Only with a hook configured: without one there is nobody to notify.
    configured = settings.current()
    breach_url, alert_url = configured.sla_webhook, configured.safeguarding_webhook
    if not breach_url and not alert_url:
        yield
        return

    async def nobody(breach: Breach) -> None:
        return None

    monitor = SlaMonitor(
        app[QUEUE],
        app[SLA_POLICY],
        notify=WebhookNotifier(breach_url) if breach_url else nobody,
        alert=WebhookNotifier(alert_url) if alert_url else None,
    )
    task = asyncio.create_task(monitor.run())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def setup(app: ConsoleApp) -> None:
    """Add the agent console, its queue, reply sender, resumer and SLA policy to the app.

    Tests replace the ``SENDER`` and ``RESUME`` keys with fakes after ``create_app``.

    Raises:
        OSError: ``COUNCIL_SLA_FILE`` cannot be read.
        ValueError: ``COUNCIL_SLA_FILE`` is not valid JSON.
    """
    app[QUEUE] = HandoffQueue(app[REDIS], app[NAMESPACE])
    app[SENDER] = OutboxSender(app[REDIS], app[NAMESPACE])
    resumer: Resumer = RasaResumer()
    app[RESUME] = resumer
    app[SLA_POLICY] = SlaPolicy.from_env()
    app[CANNED] = CannedResponses(app[REDIS], app[NAMESPACE])
    app.add_lifespan(_sla_monitor)
    app.add_route("/agent/", queue_page)
    app.add_route("/api/agent/queue", queue_api)
    app.add_route("/agent/cases/{case_id}", case_page)
    app.add_route("/api/agent/cases/{case_id}/updates", case_updates)
    app.add_route("/api/agent/cases/{case_id}/deliveries", case_deliveries)
    app.add_route("/api/agent/channels", channels_api)
    app.add_route("/api/agent/reports", reports_api)
    app.add_route("/api/agent/session", session_status)
    app.add_route("/api/agent/cases/{case_id}/typing", typing_api, methods=["POST"])
    app.add_route("/api/agent/session/extend", session_extend, methods=["POST"])
    for action, handler in (
        ("claim", claim),
        ("release", release),
        ("reply", reply),
        ("note", note),
        ("resolve", resolve),
        ("return", return_to_bot),
        ("reassign", reassign),
    ):
        app.add_route(f"/agent/cases/{{case_id}}/{action}", handler, methods=["POST"])
    app.add_route("/agent/canned", canned_page, methods=["GET", "POST"])
    app.add_route("/agent/canned/{response_id}/delete", canned_delete, methods=["POST"])
    add_nav(app, "Handoff queue", "/agent/", "agent")
    add_nav(app, "Canned responses", "/agent/canned", "editor")

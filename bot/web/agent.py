"""The agent console (``/agent/``): the live handoff queue and the case view.

Agents see only their teams' cases (admins see every team). From a case they claim it (a lease
in Redis, so two agents never work on the same case), reply on the resident's own channel
(through :class:`~bot.handoff.replies.ReplySender`, respecting the messaging window), add
internal notes, reassign it to another team, resolve it, or give the conversation back to the
bot (through the Rasa HTTP API). Every action is written to the audit log, without the
resident's words. Editors maintain the canned responses under ``/agent/canned``.

Environment: ``RASA_URL`` / ``RASA_AUTH_TOKEN`` (return to bot), ``COUNCIL_SLA_FILE`` (JSON
targets, see :meth:`SlaPolicy.from_mapping`), ``COUNCIL_SLA_WEBHOOK`` and
``COUNCIL_SAFEGUARDING_WEBHOOK`` (breach and out-of-hours alert hooks; the console checks
every minute when one is set).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import aiohttp
from aiohttp import web
from multidict import MultiDictProxy

from bot.channels.window import window_state
from bot.handoff.canned import CannedResponses
from bot.handoff.queue import HandoffQueue
from bot.handoff.record import TEAMS, HandoffRecord
from bot.handoff.replies import OutboundReply, OutboxSender, ReplySender, reply_options
from bot.handoff.resume import RasaResumer, Resumer
from bot.handoff.sla import Breach, SlaMonitor, SlaPolicy, WebhookNotifier, evaluate
from bot.web import audit
from bot.web.accounts import User
from bot.web.app import NAMESPACE, REDIS, add_nav, current_user, render, require_role

__all__ = [
    "CANNED",
    "LEASE_SECONDS",
    "QUEUE",
    "RESUME",
    "SENDER",
    "SLA_POLICY",
    "setup",
]

logger = logging.getLogger(__name__)

QUEUE = web.AppKey("agent.queue", HandoffQueue)
SENDER = web.AppKey("agent.sender", ReplySender)
RESUME: web.AppKey[Resumer] = web.AppKey("agent.resume")
SLA_POLICY = web.AppKey("agent.sla", SlaPolicy)
CANNED = web.AppKey("agent.canned", CannedResponses)
_MONITOR_TASK: web.AppKey[asyncio.Task[None]] = web.AppKey("agent.sla_task")

LEASE_SECONDS = 15 * 60
_MAX_TEXT = 4000
_Form = MultiDictProxy[str | bytes | web.FileField]


def _me(request: web.Request) -> User:
    user = current_user(request)
    assert user is not None  # require_role guarantees it
    return user


def _teams(user: User) -> list[str]:
    """Teams whose cases ``user`` may see (admins: all)."""
    return list(TEAMS) if user.has_role("admin") else list(user.teams)


def _text(form: _Form, name: str) -> str:
    value = form.get(name, "")
    return value.strip()[:_MAX_TEXT] if isinstance(value, str) else ""


def _now(request: web.Request) -> datetime:
    return request.app[QUEUE].clock()


async def _window(request: web.Request, record: HandoffRecord) -> dict[str, Any] | None:
    """The messaging window now: live from the channel's last inbound time when known."""
    live = await window_state(
        request.app[REDIS],
        record.conversation_id,
        namespace=request.app[NAMESPACE],
        now=_now(request).timestamp(),
    )
    if live is not None and live["last_inbound_at"] is not None:
        return live
    return record.window  # the state written with the handoff (no inbound recorded since)


async def _case(request: web.Request) -> HandoffRecord:
    """The case named in the URL, if the user's teams may see it (404 / 403 otherwise)."""
    record = await request.app[QUEUE].get(request.match_info["case_id"])
    if record is None:
        raise web.HTTPNotFound(text="There is no such case.")
    if record.team not in _teams(_me(request)):
        raise web.HTTPForbidden(text="This case belongs to a team you are not in.")
    return record


async def _queue_rows(request: web.Request) -> list[dict[str, Any]]:
    queue = request.app[QUEUE]
    records = await queue.list_open_for(_teams(_me(request)))
    ids = [r.case_id for r in records]
    holders = await queue.holders(ids)
    now = _now(request)
    policy = request.app[SLA_POLICY]
    rows = []
    for record, meta in zip(records, await queue.metas(ids), strict=True):
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
                "name": record.display_name or record.sender,
                "created_at": record.created_at,
                "waiting": _ago(datetime.fromisoformat(record.created_at), now),
                "holder": holders.get(record.case_id, ""),
                "sla": f"{due.kind.replace('_', ' ')}: {due.left_text}",
                "breached": first.breached or resolution.breached,
            }
        )
    return rows


def _ago(then: datetime, now: datetime) -> str:
    minutes = max(int((now - then).total_seconds() // 60), 0)
    if minutes < 60:
        return f"{minutes}m"
    return f"{minutes // 60}h {minutes % 60}m" if minutes < 1440 else f"{minutes // 1440}d"


@require_role("agent")
async def queue_page(request: web.Request) -> web.StreamResponse:
    """The live queue of the agent's teams (refreshed by ``/static/agent/agent.js``)."""
    user = _me(request)
    context = {"rows": await _queue_rows(request), "teams": _teams(user)}
    return render(request, "agent/queue.html", context)


@require_role("agent")
async def queue_api(request: web.Request) -> web.StreamResponse:
    """The queue as JSON for the live page."""
    rows = await _queue_rows(request)
    return web.json_response({"count": len(rows), "cases": rows})


async def _case_page(
    request: web.Request, record: HandoffRecord, *, error: str = "", status: int = 200
) -> web.Response:
    queue = request.app[QUEUE]
    now = _now(request)
    meta = await queue.meta(record.case_id)
    earlier = await queue.earlier_cases(record)
    me = _me(request)
    window = await _window(request, record)
    return render(
        request,
        "agent/case.html",
        {
            "case": record,
            "transcript": await queue.transcript(record.case_id),
            "notes": await queue.notes(record.case_id),
            "holder": await queue.holder(record.case_id),
            "me": me.username,
            "sla": evaluate(request.app[SLA_POLICY], record, meta, now),
            "window": window,
            "options": reply_options(record.channel, window, now),
            "earlier": [r for r in earlier if r.team in _teams(me)],
            "earlier_hidden": sum(1 for r in earlier if r.team not in _teams(me)),
            "canned": await request.app[CANNED].all(),
            "teams": [t for t in TEAMS if t != record.team],
            "done": request.query.get("done", ""),
            "error": error,
        },
        status=status,
    )


@require_role("agent")
async def case_page(request: web.Request) -> web.StreamResponse:
    """A case with everything the agent needs to answer."""
    record = await _case(request)
    await audit.record(request, "handoff.view", "handoff", record.case_id)
    return await _case_page(request, record)


def _done(record: HandoffRecord, what: str) -> web.HTTPFound:
    return web.HTTPFound(f"/agent/cases/{record.case_id}?done={what}")


async def _hold(request: web.Request, record: HandoffRecord) -> None:
    """Claim (or renew) the case for the user before acting; 409 if it is closed or taken."""
    if record.status != "open":
        raise web.HTTPConflict(text="This case is closed.")
    me = _me(request).username
    if await request.app[QUEUE].claim(record.case_id, me, LEASE_SECONDS) is None:
        holder = await request.app[QUEUE].holder(record.case_id)
        raise web.HTTPConflict(text=f"{holder or 'Another agent'} is working on this case.")


@require_role("agent")
async def claim(request: web.Request) -> web.StreamResponse:
    """Take the case (a lease that expires if the agent goes away)."""
    record = await _case(request)
    await _hold(request, record)
    await audit.record(request, "handoff.claim", "handoff", record.case_id)
    raise _done(record, "claimed")


@require_role("agent")
async def release(request: web.Request) -> web.StreamResponse:
    """Give the case back to the queue."""
    record = await _case(request)
    if await request.app[QUEUE].release(record.case_id, _me(request).username):
        await audit.record(request, "handoff.release", "handoff", record.case_id)
    raise _done(record, "released")


@require_role("agent")
async def reply(request: web.Request) -> web.StreamResponse:
    """Send a reply on the resident's channel (or its allowed alternative)."""
    record = await _case(request)
    form = await request.post()
    text = _text(form, "text")
    if not text:
        return await _case_page(request, record, error="Write a reply first.", status=422)
    await _hold(request, record)
    options = reply_options(record.channel, await _window(request, record), _now(request))
    alternative = _text(form, "send_as") == "alternative"
    if not options.free_text and not (alternative and options.tag):
        return await _case_page(request, record, error=options.explanation, status=409)
    tag = options.tag if not options.free_text else None
    sent_id = await request.app[SENDER].send(OutboundReply.for_record(record, text, tag))
    await request.app[QUEUE].append_message(record.conversation_id, "agent", text)
    detail = {"outbox_id": sent_id, "tag": tag or "", "characters": len(text)}
    await audit.record(request, "handoff.reply", "handoff", record.case_id, detail)
    raise _done(record, "sent")


@require_role("agent")
async def note(request: web.Request) -> web.StreamResponse:
    """Add an internal note."""
    record = await _case(request)
    text = _text(await request.post(), "text")
    if not text:
        return await _case_page(request, record, error="Write the note first.", status=422)
    await request.app[QUEUE].add_note(record.case_id, _me(request).username, text)
    await audit.record(request, "handoff.note", "handoff", record.case_id)
    raise _done(record, "noted")


@require_role("agent")
async def resolve(request: web.Request) -> web.StreamResponse:
    """Close the case as answered."""
    record = await _case(request)
    await _hold(request, record)
    await request.app[QUEUE].resolve(record.case_id, _me(request).username)
    await audit.record(request, "handoff.resolve", "handoff", record.case_id)
    raise _done(record, "resolved")


@require_role("agent")
async def return_to_bot(request: web.Request) -> web.StreamResponse:
    """Give the conversation back to the bot, which answers the resident's next message."""
    record = await _case(request)
    await _hold(request, record)
    try:
        await request.app[RESUME](record.conversation_id)
    except (aiohttp.ClientError, TimeoutError) as exc:
        logger.warning("could not resume %s: %s", record.conversation_id, exc)
        message = "The bot could not be reached, so the case stays open. Try again shortly."
        return await _case_page(request, record, error=message, status=502)
    await request.app[QUEUE].return_to_bot(record.case_id, _me(request).username)
    await audit.record(request, "handoff.return_to_bot", "handoff", record.case_id)
    raise _done(record, "returned-to-bot")


@require_role("agent")
async def reassign(request: web.Request) -> web.StreamResponse:
    """Move the case to another team's queue."""
    record = await _case(request)
    team = _text(await request.post(), "team")
    if team not in TEAMS:
        raise web.HTTPBadRequest(text="Choose one of the teams.")
    if not await request.app[QUEUE].reassign(record.case_id, team):
        raise web.HTTPConflict(text="This case is closed.")
    detail = {"from": record.team, "to": team}
    await audit.record(request, "handoff.reassign", "handoff", record.case_id, detail)
    if team not in _teams(_me(request)):
        raise web.HTTPFound("/agent/?done=reassigned")
    raise _done(record, "reassigned")


@require_role("editor")
async def canned_page(request: web.Request) -> web.StreamResponse:
    """List and add canned responses (editors)."""
    canned = request.app[CANNED]
    if request.method == "POST":
        form = await request.post()
        title, text = _text(form, "title")[:100], _text(form, "text")
        if not title or not text:
            context = {"responses": await canned.all(), "error": "Give a title and a text."}
            return render(request, "agent/canned.html", context, status=422)
        added = await canned.add(title, text)
        await audit.record(request, "canned.create", "canned_response", added.response_id)
        raise web.HTTPFound("/agent/canned?done=added")
    context = {"responses": await canned.all(), "done": request.query.get("done", "")}
    return render(request, "agent/canned.html", context)


@require_role("editor")
async def canned_delete(request: web.Request) -> web.StreamResponse:
    """Delete a canned response (editors)."""
    response_id = request.match_info["response_id"]
    if not await request.app[CANNED].remove(response_id):
        raise web.HTTPNotFound(text="There is no such canned response.")
    await audit.record(request, "canned.delete", "canned_response", response_id)
    raise web.HTTPFound("/agent/canned?done=deleted")


async def _sla_monitor(app: web.Application) -> AsyncIterator[None]:
    # Only with a hook configured: without one there is nobody to notify.
    breach_url = os.environ.get("COUNCIL_SLA_WEBHOOK", "").strip()
    alert_url = os.environ.get("COUNCIL_SAFEGUARDING_WEBHOOK", "").strip()
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
    app[_MONITOR_TASK] = asyncio.create_task(monitor.run())
    yield
    app[_MONITOR_TASK].cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await app[_MONITOR_TASK]


def setup(app: web.Application) -> None:
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
    app.cleanup_ctx.append(_sla_monitor)
    routes = app.router
    routes.add_get("/agent/", queue_page)
    routes.add_get("/api/agent/queue", queue_api)
    routes.add_get("/agent/cases/{case_id}", case_page)
    for action, handler in (
        ("claim", claim),
        ("release", release),
        ("reply", reply),
        ("note", note),
        ("resolve", resolve),
        ("return", return_to_bot),
        ("reassign", reassign),
    ):
        routes.add_post(f"/agent/cases/{{case_id}}/{action}", handler)
    routes.add_route("*", "/agent/canned", canned_page)
    routes.add_post("/agent/canned/{response_id}/delete", canned_delete)
    add_nav(app, "Handoff queue", "/agent/", "agent")
    add_nav(app, "Canned responses", "/agent/canned", "editor")

"""The editor console (``/editor/``): knowledge-base entries, from draft to live answer.

Editors list and search entries, edit them with a preview per channel, save drafts, check what
an edit would change (the regression gate), publish, archive, roll back to any version, compare
versions, see entries past their review date and try a question. Publishing a change that
breaks a test conversation needs an admin's override; teams can require a second person's
approval. Every change is written to the audit log.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from bot import settings
from bot.errors import EntryNotFoundError
from bot.knowledge.gate import DEFAULT_CONVERSATIONS, GateReport, load_conversations
from bot.knowledge.model import CHANNELS, STATUSES, Entry, entry_problems
from bot.knowledge.store import KnowledgeBase
from bot.web import audit
from bot.web.app import (
    NAMESPACE,
    REDIS,
    SETTINGS,
    AppKey,
    ConsoleApp,
    add_nav,
    app_of,
    read_form,
    render,
    require_role,
)
from bot.web.versioned import VersionedPages, form_text, me

__all__ = ["CONVERSATIONS_ENV", "KB", "PAGES", "setup"]

KB = AppKey[KnowledgeBase]("editor.kb")
CONVERSATIONS_ENV = "COUNCIL_TEST_CONVERSATIONS"


def _kb(request: Request) -> KnowledgeBase:
    return app_of(request)[KB]


async def _teams(request: Request) -> list[str]:
    return sorted({v.entry.owner_team for v in await _kb(request).heads()})


PAGES = VersionedPages(
    store=KB,
    base="/editor/entry",
    audit="kb",
    object_type="kb_entry",
    settings_type="kb_settings",
    show=lambda request, entry_id, **page: _entry_page(request, entry_id, **page),
    settings="/editor/approval",
    groups=_teams,
)
"""Publish, approval, archive, rollback, diff and the approval settings (shared)."""


def _entry_from_form(form: FormData, entry_id: str) -> tuple[Entry, list[str]]:
    """Build an entry from the edit form; the problems list says what cannot be read."""
    problems = []
    review = form_text(form, "review_by")
    try:
        review_by = date.fromisoformat(review)
    except ValueError:
        problems.append("review_by: give the review date as YYYY-MM-DD")
        review_by = date.today()
    times: dict[str, datetime | None] = {}
    for name in ("publish_from", "expire_at"):
        value = form_text(form, name)
        try:
            times[name] = datetime.fromisoformat(value).replace(tzinfo=UTC) if value else None
        except ValueError:
            problems.append(f"{name}: give a date and time (UTC)")
            times[name] = None
    answers = {c: form_text(form, f"answer_{c}") for c in CHANNELS}
    welsh = {c: t for c in CHANNELS if (t := form_text(form, f"answer_cy_{c}"))}
    entry = Entry(
        id=entry_id,
        topic=form_text(form, "topic"),
        title=form_text(form, "title"),
        questions=tuple(q.strip() for q in form_text(form, "questions").splitlines() if q.strip()),
        # empty variants are dropped so the default serves them; the default is always kept
        answers={c: t for c, t in answers.items() if t or c == "default"},
        owner_team=form_text(form, "owner_team"),
        review_by=review_by,
        publish_from=times["publish_from"],
        expire_at=times["expire_at"],
        # the Welsh answer, if any (docs/welsh.md); all fields empty: none
        translations={"cy": welsh} if welsh else {},
    )
    return entry, problems + entry_problems(entry)


def _a_year_after(day: date) -> date:
    """The same day a year later; 29 February becomes 28 February."""
    try:
        return day.replace(year=day.year + 1)
    except ValueError:  # 29 February, and the next year is not a leap year
        return day.replace(year=day.year + 1, day=28)


def _today(request: Request) -> date:
    """Today by the console's clock (tests inject a fake one)."""
    return date.fromtimestamp(app_of(request)[SETTINGS].clock())


def _form_values(entry: Entry) -> dict[str, str]:
    values = {
        "id": entry.id,
        "topic": entry.topic,
        "title": entry.title,
        "questions": "\n".join(entry.questions),
        "owner_team": entry.owner_team,
        "review_by": entry.review_by.isoformat(),
        "publish_from": entry.publish_from.strftime("%Y-%m-%dT%H:%M") if entry.publish_from else "",
        "expire_at": entry.expire_at.strftime("%Y-%m-%dT%H:%M") if entry.expire_at else "",
    }
    values.update({f"answer_{c}": entry.answers.get(c, "") for c in CHANNELS})
    welsh = entry.translations.get("cy", {})
    values.update({f"answer_cy_{c}": welsh.get(c, "") for c in CHANNELS})
    return values


async def _entry_page(
    request: Request,
    entry_id: str,
    *,
    values: dict[str, str] | None = None,
    preview: Entry | None = None,
    errors: list[str] | None = None,
    report: GateReport | None = None,
    blocked: list[str] | None = None,
    status: int = 200,
) -> Response:
    kb = _kb(request)
    shared = await PAGES.history(request, entry_id)
    head = shared["head"]
    if blocked and report is None and kb.conversations:
        # why a publish was refused: the questions whose answers the edit would change
        report = await kb.regression(head.entry)
    shown = preview or head.entry
    return render(
        request,
        "editor/entry.html",
        {
            **shared,
            "live": await kb.live(entry_id),
            "values": values if values is not None else _form_values(head.entry),
            "preview": {c: shown.answer_for(c) for c in CHANNELS},
            "channels": CHANNELS,
            "errors": errors or [],
            "blocked": blocked or [],
            "report": report,
        },
        status=status,
    )


@require_role("editor")
async def list_entries(request: Request) -> Response:
    """List and search entries."""
    query = request.query_params.get("q", "")
    status = request.query_params.get("status", "")
    found = await _kb(request).search(query, status if status in STATUSES else "")
    return render(
        request,
        "editor/list.html",
        {"versions": found, "q": query, "status": status, "statuses": STATUSES},
    )


@require_role("editor")
async def new_entry(request: Request) -> Response:
    """Show the form for a new entry, or save it as a draft."""
    if request.method == "GET":
        values = {"review_by": _a_year_after(_today(request)).isoformat()}
        context = {"values": values, "errors": [], "channels": CHANNELS}
        return render(request, "editor/new.html", context)
    form = await read_form(request)
    entry_id = form_text(form, "id").lower()
    entry, problems = _entry_from_form(form, entry_id)
    try:
        await _kb(request).get(entry_id)
        problems.insert(0, f"id: {entry_id} is already used")
    except EntryNotFoundError:
        pass
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    if problems:
        return render(
            request,
            "editor/new.html",
            {"values": values, "errors": problems, "channels": CHANNELS},
            status=422,
        )
    version = await _kb(request).save_draft(entry, me(request).username, form_text(form, "reason"))
    await audit.record(request, "kb.create", "kb_entry", entry_id, {"version": version.number})
    return RedirectResponse(f"/editor/entry/{entry_id}?done=saved", status_code=302)


@require_role("editor")
async def entry_page(request: Request) -> Response:
    """Show an entry: edit form, preview per channel, history and actions."""
    return await _entry_page(request, await PAGES.existing(request))


@require_role("editor")
async def edit_entry(request: Request) -> Response:
    """Preview, check (regression gate) or save an edit as a draft.

    Problems re-show the form with the editor's text, and the stored draft is unchanged.
    """
    entry_id = await PAGES.existing(request)
    form = await read_form(request)
    action = form_text(form, "action") or "save"
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    entry, problems = _entry_from_form(form, entry_id)
    if problems:
        return await _entry_page(request, entry_id, values=values, errors=problems, status=422)
    if action == "preview":
        return await _entry_page(request, entry_id, values=values, preview=entry)
    if action == "check":
        report = await _kb(request).regression(entry)
        return await _entry_page(request, entry_id, values=values, preview=entry, report=report)
    reason = form_text(form, "reason")
    version = await _kb(request).save_draft(entry, me(request).username, reason)
    return await PAGES.saved(request, entry_id, version.number, version.changes)


@require_role("editor")
async def review_page(request: Request) -> Response:
    """Entries past their review date."""
    today = datetime.now(UTC).date()
    due = await _kb(request).due_for_review(today)
    return render(request, "editor/review.html", {"entries": due, "today": today})


@require_role("editor")
async def try_page(request: Request) -> Response:
    """Try a question: which live entry would answer, how, and with what confidence.

    When none would, the page shows what the resident gets instead: a clarifying question with
    the likeliest topics (the same selector as ``action_answer``), or a person.
    """
    context: dict[str, Any] = {
        "question": "",
        "intent": "",
        "confidence": "",
        "result": None,
        "offered": [],
    }
    if request.method == "POST":
        form = await read_form(request)
        question, intent = form_text(form, "question"), form_text(form, "intent")
        try:
            confidence = float(form_text(form, "confidence") or "0")
        except ValueError:
            raise HTTPException(400, "Confidence is a number from 0 to 1.") from None
        kb, now = _kb(request), datetime.now(UTC)
        index = await kb.refresh()
        vector = await asyncio.to_thread(index.encode_message, question)
        found = await kb.choose(intent or None, confidence, question, now, vector)
        context.update(
            question=question,
            intent=intent,
            confidence=form_text(form, "confidence"),
            result=found,
            offered=[] if found else index.alternatives(vector, now),
            tried=True,
        )
    return render(request, "editor/try.html", context)


def _conversations_folder() -> Path:
    return settings.current().test_conversations or DEFAULT_CONVERSATIONS


def setup(app: ConsoleApp) -> None:
    """Add the editor pages and the knowledge base (with its test conversations) to the app.

    Raises:
        ConfigError: A test conversation file is malformed.
    """
    app[KB] = KnowledgeBase(
        app[REDIS], app[NAMESPACE], conversations=load_conversations(_conversations_folder())
    )
    PAGES.add_routes(app)
    app.add_route("/editor/", list_entries)
    app.add_route("/editor/new", new_entry, methods=["GET", "POST"])
    app.add_route("/editor/review", review_page)
    app.add_route("/editor/try", try_page, methods=["GET", "POST"])
    app.add_route("/editor/entry/{entry_id}", entry_page)
    app.add_route("/editor/entry/{entry_id}", edit_entry, methods=["POST"])
    add_nav(app, "Knowledge base", "/editor/", "editor")

"""The editor console (``/editor/``): knowledge-base entries, from draft to live answer.

Editors list and search entries, edit them with a preview per channel, save drafts, check what
an edit would change (the regression gate), publish, archive, roll back to any version, compare
versions, see entries past their review date and try a question. Publishing a change that
breaks a test conversation needs an admin's override; teams can require a second person's
approval. Every change is written to the audit log.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from bot import settings
from bot.errors import EntryInvalidError, EntryNotFoundError, PublishBlockedError
from bot.knowledge.diff import entry_diff
from bot.knowledge.gate import DEFAULT_CONVERSATIONS, GateReport, load_conversations
from bot.knowledge.model import CHANNELS, STATUSES, Entry, entry_problems
from bot.knowledge.store import KnowledgeBase
from bot.web import audit
from bot.web.accounts import User
from bot.web.app import (
    NAMESPACE,
    REDIS,
    SETTINGS,
    AppKey,
    ConsoleApp,
    add_nav,
    app_of,
    current_user,
    read_form,
    render,
    require_role,
)

__all__ = ["CONVERSATIONS_ENV", "KB", "setup"]

KB = AppKey[KnowledgeBase]("editor.kb")
CONVERSATIONS_ENV = "COUNCIL_TEST_CONVERSATIONS"


def _kb(request: Request) -> KnowledgeBase:
    return app_of(request)[KB]


def _me(request: Request) -> User:
    user = current_user(request)
    assert user is not None  # require_role guarantees it
    return user


def _text(form: FormData, name: str) -> str:
    value = form.get(name, "")
    return value.strip() if isinstance(value, str) else ""


def _entry_from_form(form: FormData, entry_id: str) -> tuple[Entry, list[str]]:
    """Build an entry from the edit form; the problems list says what cannot be read."""
    problems = []
    review = _text(form, "review_by")
    try:
        review_by = date.fromisoformat(review)
    except ValueError:
        problems.append("review_by: give the review date as YYYY-MM-DD")
        review_by = date.today()
    times: dict[str, datetime | None] = {}
    for name in ("publish_from", "expire_at"):
        value = _text(form, name)
        try:
            times[name] = datetime.fromisoformat(value).replace(tzinfo=UTC) if value else None
        except ValueError:
            problems.append(f"{name}: give a date and time (UTC)")
            times[name] = None
    answers = {c: _text(form, f"answer_{c}") for c in CHANNELS}
    welsh = {c: t for c in CHANNELS if (t := _text(form, f"answer_cy_{c}"))}
    entry = Entry(
        id=entry_id,
        topic=_text(form, "topic"),
        title=_text(form, "title"),
        questions=tuple(q.strip() for q in _text(form, "questions").splitlines() if q.strip()),
        # empty variants are dropped so the default serves them; the default is always kept
        answers={c: t for c, t in answers.items() if t or c == "default"},
        owner_team=_text(form, "owner_team"),
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
    head = await kb.head(entry_id)
    live = await kb.live(entry_id)
    shown = preview or head.entry
    return render(
        request,
        "editor/entry.html",
        {
            "head": head,
            "live": live,
            "values": values if values is not None else _form_values(head.entry),
            "preview": {c: shown.answer_for(c) for c in CHANNELS},
            "channels": CHANNELS,
            "errors": errors or [],
            "versions": list(reversed(await kb.versions(entry_id))),
            "pending": await kb.pending_approval(entry_id),
            "needs_approval": await kb.approval_required(head.entry.owner_team),
            "blocked": blocked or [],
            "done": request.query_params.get("done", ""),
            "is_admin": _me(request).has_role("admin"),
            "me": _me(request).username,
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
    entry_id = _text(form, "id").lower()
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
    version = await _kb(request).save_draft(entry, _me(request).username, _text(form, "reason"))
    await audit.record(request, "kb.create", "kb_entry", entry_id, {"version": version.number})
    return RedirectResponse(f"/editor/entry/{entry_id}?done=saved", status_code=302)


async def _existing(request: Request) -> str:
    entry_id = str(request.path_params["entry_id"])
    try:
        await _kb(request).head(entry_id)
    except EntryNotFoundError:
        raise HTTPException(404, "There is no such entry.") from None
    return entry_id


@require_role("editor")
async def entry_page(request: Request) -> Response:
    """Show an entry: edit form, preview per channel, history and actions."""
    return await _entry_page(request, await _existing(request))


@require_role("editor")
async def edit_entry(request: Request) -> Response:
    """Preview, check (regression gate) or save an edit as a draft.

    Problems re-show the form with the editor's text, and the stored draft is unchanged.
    """
    entry_id = await _existing(request)
    form = await read_form(request)
    action = _text(form, "action") or "save"
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    entry, problems = _entry_from_form(form, entry_id)
    if problems:
        return await _entry_page(request, entry_id, values=values, errors=problems, status=422)
    if action == "preview":
        return await _entry_page(request, entry_id, values=values, preview=entry)
    if action == "check":
        report = await _kb(request).regression(entry)
        return await _entry_page(request, entry_id, values=values, preview=entry, report=report)
    reason = _text(form, "reason")
    version = await _kb(request).save_draft(entry, _me(request).username, reason)
    detail = {"version": version.number, "fields": list(version.changes)}
    await audit.record(request, "kb.save", "kb_entry", entry_id, detail)
    return RedirectResponse(f"/editor/entry/{entry_id}?done=saved", status_code=302)


def _gate_override(form: FormData, me: User) -> bool:
    """Whether the form overrides the regression gate (403 unless ``me`` is an admin)."""
    override = _text(form, "override") == "1"
    if override and not me.has_role("admin"):
        raise HTTPException(403, "Only an admin can override the regression gate.")
    return override


@require_role("editor")
async def publish_entry(request: Request) -> Response:
    """Publish the working copy through the regression gate (admins may override).

    On a team that needs a second person, the form's ``approve`` names the version number the
    approver looked at; only that version, still the one requested, is published.
    """
    entry_id = await _existing(request)
    form = await read_form(request)
    me = _me(request)
    override = _gate_override(form, me)
    kb = _kb(request)
    reason, override_by = _text(form, "reason"), me.username if override else ""
    approving = _text(form, "approve")
    try:
        if approving:
            try:
                number = int(approving)
            except ValueError:
                raise HTTPException(400, "Say which version you approve.") from None
            version = await kb.approve(
                entry_id, number, me.username, reason, override_by=override_by
            )
        else:
            version = await kb.publish(entry_id, me.username, reason, override_by=override_by)
    except EntryInvalidError as exc:
        return await _entry_page(request, entry_id, errors=exc.problems, status=422)
    except PublishBlockedError as exc:
        await audit.record(request, "kb.publish.blocked", "kb_entry", entry_id, {})
        report = await kb.regression(await kb.get(entry_id)) if kb.conversations else None
        return await _entry_page(request, entry_id, blocked=exc.broken, report=report, status=409)
    detail: dict[str, Any] = {"version": version.number}
    if version.approved_by:
        detail["approved"] = int(approving)
        detail["author"] = version.author
    if override:
        detail["override"] = True
    await audit.record(request, "kb.publish", "kb_entry", entry_id, detail)
    return RedirectResponse(f"/editor/entry/{entry_id}?done=published", status_code=302)


@require_role("editor")
async def request_approval(request: Request) -> Response:
    """Ask a second person to approve the working copy."""
    entry_id = await _existing(request)
    try:
        head = await _kb(request).request_approval(entry_id, _me(request).username)
    except EntryInvalidError as exc:
        return await _entry_page(request, entry_id, errors=exc.problems, status=422)
    detail = {"version": head.number}
    await audit.record(request, "kb.approval.request", "kb_entry", entry_id, detail)
    return RedirectResponse(f"/editor/entry/{entry_id}?done=approval-requested", status_code=302)


@require_role("editor")
async def archive_entry(request: Request) -> Response:
    """Withdraw an entry from residents."""
    entry_id = await _existing(request)
    form = await read_form(request)
    version = await _kb(request).archive(entry_id, _me(request).username, _text(form, "reason"))
    await audit.record(request, "kb.archive", "kb_entry", entry_id, {"version": version.number})
    return RedirectResponse(f"/editor/entry/{entry_id}?done=archived", status_code=302)


@require_role("editor")
async def rollback_entry(request: Request) -> Response:
    """Restore an earlier version.

    A published one is republished, or waits for approval on a team that needs a second person.
    """
    entry_id = await _existing(request)
    form = await read_form(request)
    me = _me(request)
    override = _gate_override(form, me)
    try:
        number = int(_text(form, "version"))
        version = await _kb(request).rollback(
            entry_id,
            number,
            me.username,
            _text(form, "reason"),
            override_by=me.username if override else "",
        )
    except (ValueError, EntryNotFoundError):
        raise HTTPException(400, "Choose a version of this entry.") from None
    except PublishBlockedError as exc:
        await audit.record(request, "kb.rollback.blocked", "kb_entry", entry_id, {})
        return await _entry_page(request, entry_id, blocked=exc.broken, status=409)
    detail = {"version": version.number, "restored": number, "override": override}
    await audit.record(request, "kb.rollback", "kb_entry", entry_id, detail)
    if version.requested_by:  # a team that needs approval: the rollback waits for it
        await audit.record(
            request, "kb.approval.request", "kb_entry", entry_id, {"version": version.number}
        )
        done = "rolled-back-approval-requested"
    else:
        done = "rolled-back"
    return RedirectResponse(f"/editor/entry/{entry_id}?done={done}", status_code=302)


@require_role("editor")
async def diff_page(request: Request) -> Response:
    """Compare two versions of an entry (default: the previous and the latest)."""
    entry_id = await _existing(request)
    kb = _kb(request)
    versions = await kb.versions(entry_id)
    try:
        a = int(request.query_params.get("a", versions[-2].number if len(versions) > 1 else 1))
        b = int(request.query_params.get("b", versions[-1].number))
        before, after = await kb.version(entry_id, a), await kb.version(entry_id, b)
    except (ValueError, EntryNotFoundError):
        raise HTTPException(404, "There is no such version.") from None
    return render(
        request,
        "editor/diff.html",
        {
            "entry_id": entry_id,
            "before": before,
            "after": after,
            "versions": versions,
            "diffs": entry_diff(before.entry, after.entry),
        },
    )


@require_role("editor")
async def review_page(request: Request) -> Response:
    """Entries past their review date."""
    today = datetime.now(UTC).date()
    due = await _kb(request).due_for_review(today)
    return render(request, "editor/review.html", {"entries": due, "today": today})


@require_role("editor")
async def try_page(request: Request) -> Response:
    """Try a question: which live entry would answer, how, and with what confidence."""
    context: dict[str, Any] = {"question": "", "intent": "", "confidence": "", "result": None}
    if request.method == "POST":
        form = await read_form(request)
        question, intent = _text(form, "question"), _text(form, "intent")
        try:
            confidence = float(_text(form, "confidence") or "0")
        except ValueError:
            raise HTTPException(400, "Confidence is a number from 0 to 1.") from None
        found = await _kb(request).choose(intent or None, confidence, question, datetime.now(UTC))
        context.update(
            question=question,
            intent=intent,
            confidence=_text(form, "confidence"),
            result=found,
            tried=True,
        )
    return render(request, "editor/try.html", context)


@require_role("admin")
async def approval_page(request: Request) -> Response:
    """Choose which teams need a second person to approve publishes (admins)."""
    kb = _kb(request)
    teams = sorted({v.entry.owner_team for v in await kb.heads()})
    if request.method == "POST":
        form = await read_form(request)
        wanted = {v for v in form.getlist("teams") if isinstance(v, str)}
        for team in teams:
            await kb.set_approval_required(team, team in wanted)
        detail = {"teams": sorted(wanted & set(teams))}
        await audit.record(request, "kb.approval.teams", "kb_settings", "approval", detail)
        return RedirectResponse("/editor/approval?done=saved", status_code=302)
    required = {t for t in teams if await kb.approval_required(t)}
    context = {"teams": teams, "required": required, "done": request.query_params.get("done", "")}
    return render(request, "editor/approval.html", context)


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
    app.add_route("/editor/", list_entries)
    app.add_route("/editor/new", new_entry, methods=["GET", "POST"])
    app.add_route("/editor/review", review_page)
    app.add_route("/editor/try", try_page, methods=["GET", "POST"])
    app.add_route("/editor/approval", approval_page, methods=["GET", "POST"])
    app.add_route("/editor/entry/{entry_id}", entry_page)
    app.add_route("/editor/entry/{entry_id}", edit_entry, methods=["POST"])
    app.add_route("/editor/entry/{entry_id}/publish", publish_entry, methods=["POST"])
    app.add_route("/editor/entry/{entry_id}/approval", request_approval, methods=["POST"])
    app.add_route("/editor/entry/{entry_id}/archive", archive_entry, methods=["POST"])
    app.add_route("/editor/entry/{entry_id}/rollback", rollback_entry, methods=["POST"])
    app.add_route("/editor/entry/{entry_id}/diff", diff_page)
    add_nav(app, "Knowledge base", "/editor/", "editor")

"""The review queue (``/review/``, role ``editor``): residents' messages the bot missed.

Editors see the messages of :class:`bot.knowledge.review.ReviewQueue`: what residents chose in
clarifying questions, and the unanswered questions of low-confidence and out-of-scope handoffs
with the agents' outcome (imported from the cases of the last :data:`IMPORT_DAYS` days each time
the page is opened). Each is marked as an example of an intent, as out of scope, as a new
example question of a knowledge-base entry (added to the entry's working copy as a draft, to be
published as usual), or rejected. Approved intent and out-of-scope examples reach the model at
the next ``python -m bot.train`` (``data/nlu/reviewed.yml``). Every decision is audited as
``review.decide`` (the label, never the message).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from bot.errors import EntryInvalidError, EntryNotFoundError
from bot.handoff.queue import HandoffQueue
from bot.knowledge.review import LABELS, CandidateNotFoundError, ReviewQueue
from bot.knowledge.store import KnowledgeBase
from bot.services import ROOT
from bot.web import audit
from bot.web.app import (
    NAMESPACE,
    REDIS,
    AppKey,
    ConsoleApp,
    add_nav,
    app_of,
    current_user,
    read_form,
    render,
    require_role,
)
from bot.web.editor import KB

__all__ = ["IMPORT_DAYS", "REVIEW", "domain_intents", "setup"]

REVIEW = AppKey[ReviewQueue]("review.queue")
_KB = AppKey[KnowledgeBase]("review.kb")
IMPORT_DAYS = 30
"""How far back the page looks for unanswered cases to add to the queue."""

# intents residents' messages cannot be examples of: payloads, and out_of_scope (its own label)
_NOT_EXAMPLES = frozenset({"kb_choose", "attachment", "out_of_scope", "nlu_fallback"})


def domain_intents(folder: Path = ROOT / "responses") -> list[str]:
    """The intents of the domain (``responses/*.yml``) a message can be an example of."""
    names: set[str] = set()
    for path in sorted(folder.glob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        names.update(str(i) for i in data.get("intents") or [] if isinstance(i, str))
    return sorted(names - _NOT_EXAMPLES)


def _kb(request: Request) -> KnowledgeBase:
    app = app_of(request)
    return app[KB] if KB in app else app[_KB]  # the editor's, when that section is on


@require_role("editor")
async def review_page(request: Request) -> Response:
    """The pending messages, each with the editor's choices, and the latest decisions."""
    app = app_of(request)
    queue = app[REVIEW]
    end = datetime.now(UTC)
    await queue.import_cases(
        HandoffQueue(app[REDIS], app[NAMESPACE]), end - timedelta(days=IMPORT_DAYS), end
    )
    entries = [v.entry for v in await _kb(request).heads() if v.entry.status != "archived"]
    return render(
        request,
        "review/index.html",
        {
            "pending": await queue.pending(),
            "decided": await queue.decided(20),
            "intents": domain_intents(),
            "entries": entries,
        },
    )


async def _add_question(request: Request, entry_id: str, text: str) -> None:
    """Add ``text`` to the entry's example questions, as a draft of its working copy."""
    kb = _kb(request)
    user = current_user(request)
    try:
        entry = await kb.get(entry_id)
    except EntryNotFoundError:
        raise HTTPException(400, "Choose an entry that exists.") from None
    if text not in entry.questions:
        try:
            await kb.save_draft(
                replace(entry, questions=(*entry.questions, text)),
                user.username if user else "editor",
                "example question from the review queue",
            )
        except EntryInvalidError as error:
            raise HTTPException(400, "; ".join(error.problems)) from None


@require_role("editor")
async def decide(request: Request) -> Response:
    """Record the editor's decision on one message."""
    candidate_id = request.path_params["candidate_id"]
    form = await read_form(request)
    label = str(form.get("label") or "")
    intent = str(form.get("intent") or "") if label == "intent" else ""
    entry_id = str(form.get("entry") or "") if label == "kb_question" else ""
    queue = app_of(request)[REVIEW]
    if label not in LABELS:
        raise HTTPException(400, "Choose what the message is.")
    if label == "intent" and intent not in domain_intents():
        raise HTTPException(400, "Choose the intent the message is an example of.")
    candidate = await queue.get(candidate_id)
    if candidate is None or candidate.label:
        raise HTTPException(404, "That message is no longer waiting for review.")
    if label == "kb_question":
        await _add_question(request, entry_id, candidate.text)
    user = current_user(request)
    try:
        await queue.decide(
            candidate_id,
            label,
            user.username if user else "editor",
            intent=intent,
            entry_id=entry_id,
        )
    except CandidateNotFoundError:
        raise HTTPException(404, "That message is no longer waiting for review.") from None
    except ValueError as error:
        raise HTTPException(400, str(error)) from None
    await audit.record(
        request,
        "review.decide",
        "review_candidate",
        candidate_id,
        {"label": label, "intent": intent, "entry": entry_id, "source": candidate.source},
    )
    return RedirectResponse("/review/?done=reviewed", status_code=302)


def setup(app: ConsoleApp) -> None:
    """Add the review queue to the app."""
    app[REVIEW] = ReviewQueue(app[REDIS], app[NAMESPACE])
    app[_KB] = KnowledgeBase(app[REDIS], app[NAMESPACE])
    app.add_route("/review/", review_page)
    app.add_route("/review/{candidate_id}", decide, methods=["POST"])
    add_nav(app, "Review queue", "/review/", "editor")

"""The editors' pages for what residents read (``/editor/responses/``, role ``editor``).

Every response variation of ``responses/*.yml`` is listed (response, language, channel and
conditions, the text residents get now). An editor changes a variation's text, previews it
with the council profile's values, saves drafts, and publishes: the Rasa server serves the
published text within seconds (:class:`bot.responses.CouncilResponses`), and "use the shipped
text again" withdraws the change. Versions, diff, rollback, second-person approval (per domain
file: ``core``, ``bins``, ``handoff``...) and the audit log are the knowledge base's
(:class:`bot.web.versioned.VersionedPages`; audit names ``responses.*``, object type
``response``). Texts are checked before they are stored (:func:`bot.response_edits.
response_problems`): plain text, safe links, and the response's ``{variables}``.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from bot import profile
from bot.errors import EntryNotFoundError
from bot.knowledge.model import plain_text
from bot.response_edits import ResponseStore, ResponseText, Variation, fill
from bot.versioning import Version
from bot.web.app import (
    NAMESPACE,
    REDIS,
    AppKey,
    ConsoleApp,
    add_nav,
    app_of,
    read_form,
    render,
    require_role,
)
from bot.web.versioned import VersionedPages, form_text, me

__all__ = ["PAGES", "RESPONSES", "setup"]

RESPONSES = AppKey[ResponseStore]("editor.responses")
LANGUAGES = {"en": "English", "cy": "Welsh"}


def _store(request: Request) -> ResponseStore:
    return app_of(request)[RESPONSES]


async def _groups(request: Request) -> list[str]:
    return sorted({v.group for v in _store(request).shipped.values()})


def _variation(request: Request) -> Variation:
    found = _store(request).shipped.get(str(request.path_params["entry_id"]))
    if found is None:
        raise HTTPException(404, "There is no such response.")
    return found


def _preview(request: Request, text: str) -> str:
    """The text as residents read it: the profile's values filled in, the others as {name}."""
    return plain_text(fill(text, profile.current().response_variables()))


async def _response_page(
    request: Request,
    entry_id: str,
    *,
    text: str | None = None,
    reason: str = "",
    preview: str | None = None,
    errors: list[str] | None = None,
    blocked: list[str] | None = None,
    status: int = 200,
) -> Response:
    store = _store(request)
    variation = _variation(request)
    live = await store.live(entry_id)
    try:
        shared = await PAGES.history(request, entry_id)
        head: Version[ResponseText] | None = shared["head"]
    except EntryNotFoundError:  # never edited: the shipped text
        shared, head = {"base": PAGES.base, "done": ""}, None
    current = head.entry.text if head and head.entry.status != "archived" else variation.text
    served = live.text if live else variation.text
    return render(
        request,
        "editor/response.html",
        {
            **shared,
            "variation": variation,
            "language": LANGUAGES.get(variation.language, variation.language),
            "live": live,
            "served": _preview(request, served),
            "text": text if text is not None else current,
            "reason": reason,
            "preview": _preview(request, preview) if preview is not None else None,
            "errors": errors or [],
            "blocked": blocked or [],
        },
        status=status,
    )


@require_role("editor")
async def list_responses(request: Request) -> Response:
    """Every response variation with the text residents get now; search by id or words."""
    store = _store(request)
    query = request.query_params.get("q", "").strip().lower()
    language = request.query_params.get("language", "")
    live = {item.id: item for item in await store.all_live()}
    drafts = {v.entry.id: v.entry for v in await store.heads()}
    rows = []
    for variation in store.shipped.values():
        if language in LANGUAGES and variation.language != language:
            continue
        text = live[variation.id].text if variation.id in live else variation.text
        if query and query not in f"{variation.id} {text}".lower():
            continue
        draft = drafts.get(variation.id)
        state = "shipped text"
        if variation.id in live:
            state = "edited, published"
        if draft is not None and draft.status == "draft":
            state += " (draft waiting)"
        rows.append({"variation": variation, "text": text, "state": state})
    context = {"rows": rows, "q": query, "language": language, "languages": LANGUAGES}
    return render(request, "editor/responses.html", context)


@require_role("editor")
async def response_page(request: Request) -> Response:
    """A variation: shipped and served text, edit form, publish, history."""
    return await _response_page(request, _variation(request).id)


@require_role("editor")
async def edit_response(request: Request) -> Response:
    """Preview or save an edited text as a draft (refused with the problems, text kept)."""
    variation = _variation(request)
    form = await read_form(request)
    text, reason = form_text(form, "text"), form_text(form, "reason")
    store = _store(request)
    edit = ResponseText(variation.id, text, variation.group)
    problems = store.problems(edit)
    if problems:
        return await _response_page(
            request, variation.id, text=text, reason=reason, errors=problems, status=422
        )
    if form_text(form, "action") == "preview":
        return await _response_page(request, variation.id, text=text, reason=reason, preview=text)
    version = await store.save_draft(edit, me(request).username, reason)
    return await PAGES.saved(request, variation.id, version.number, version.changes)


PAGES = VersionedPages(
    store=RESPONSES,
    base="/editor/responses",
    audit="responses",
    object_type="response",
    settings_type="responses_settings",
    show=lambda request, entry_id, **page: _response_page(request, entry_id, **page),
    settings="/editor/responses/approval",
    groups=_groups,
    missing="There is no such response, or it was never edited.",
)
"""Publish, approval, withdraw, rollback, diff and the approval settings (shared)."""


def setup(app: ConsoleApp) -> None:
    """Add the response pages and the store of the editors' texts to the app.

    Raises:
        ConfigError: The council profile is invalid (its values are the ones texts may use).
    """
    values = profile.current().response_variables()
    app[RESPONSES] = ResponseStore(app[REDIS], app[NAMESPACE], profile_values=values)
    PAGES.add_routes(app)
    app.add_route("/editor/responses/", list_responses)
    app.add_route("/editor/responses/{entry_id}", response_page)
    app.add_route("/editor/responses/{entry_id}", edit_response, methods=["POST"])
    add_nav(app, "Replies", "/editor/responses/", "editor")

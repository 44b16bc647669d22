"""Residents' rights in the console (``/admin/residents``): export and erase, for admins.

An admin names a resident (conversation id, phone number, email address or handoff case id) and
downloads everything held as JSON, or erases it after typing a confirmation. The work is done by
:mod:`bot.residents` (the same functions as ``python -m bot.residents``). Both are audited
(``resident.export``, ``resident.erase``); the audit log never holds what the admin typed: the
export names the resident by a keyed digest (HMAC-SHA-256 under the console's secret key, so a
phone number cannot be recovered by trying every number), the erasure by its reference.
Identifiers travel only in POST bodies, never in URLs (which end up in logs and histories).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response

from bot.residents import Layout, Resident, erase, export, find
from bot.services import ROOT
from bot.web import audit
from bot.web.app import (
    AUDIT,
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
from bot.web.audit import client_ip

__all__ = ["CONFIRMATION", "LAYOUT", "setup", "subject_digest"]

LAYOUT = AppKey[Layout]("residents.layout")
"""Where the stores keep their keys (from ``endpoints.yml``; tests set their own)."""
CONFIRMATION = "erase"
"""What an admin types to confirm an erasure."""
PAGE = "admin/residents.html"
_MAX_WHO = 200
_REFERENCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9/._-]{0,63}")
_NOTHING_HELD = "Nothing is held about that resident. Check the identifier and try again."


def subject_digest(secret_key: bytes, who: str) -> str:
    """A keyed digest naming a resident in the audit log without their identifier."""
    mac = hmac.new(secret_key, who.strip().lower().encode(), hashlib.sha256)
    return "hmac-sha256:" + mac.hexdigest()[:24]


def _counts(resident: Resident) -> dict[str, int]:
    return {"conversations": len(resident.conversations), "handoff_cases": len(resident.cases)}


async def _page(
    request: Request,
    *,
    errors: list[str] | None = None,
    who: str = "",
    status: int = 200,
    **context: object,
) -> Response:
    values = {"errors": errors or [], "who": who, "confirmation": CONFIRMATION, **context}
    return render(request, PAGE, values, status=status)


async def _lookup(request: Request) -> tuple[str, Resident | None, list[str]]:
    """The identifier from the form and the resident it names (None: nothing to look up)."""
    form = await read_form(request)
    who = str(form.get("who", "")).strip()
    if not who:
        return who, None, ["Enter a conversation id, phone number, email address or case id."]
    if len(who) > _MAX_WHO:
        return who[:_MAX_WHO], None, [f"An identifier is at most {_MAX_WHO} characters."]
    app = app_of(request)
    return who, await find(app[REDIS], app[LAYOUT], who), []


async def _audit_lookup(request: Request, action: str, who: str, found: bool) -> None:
    digest = subject_digest(app_of(request)[SETTINGS].secret_key, who)
    outcome = "ok" if found else "failed"
    await audit.record(request, action, "resident", digest, {"found": found}, outcome=outcome)


@require_role("admin")
async def residents_page(request: Request) -> Response:
    """The form: which resident, then export or erase."""
    return await _page(request)


@require_role("admin")
async def export_resident(request: Request) -> Response:
    """Download everything held about a resident as a JSON file."""
    who, resident, errors = await _lookup(request)
    if resident is None:
        return await _page(request, errors=errors, who=who, status=400)
    if not resident.found:
        await _audit_lookup(request, "resident.export", who, False)
        return await _page(request, errors=[_NOTHING_HELD], who=who, status=404)
    app = app_of(request)
    held = await export(app[REDIS], app[LAYOUT], resident)
    digest = subject_digest(app[SETTINGS].secret_key, who)
    await audit.record(request, "resident.export", "resident", digest, _counts(resident))
    day = datetime.now(UTC).strftime("%Y%m%d")
    return Response(
        json.dumps(held, indent=2, ensure_ascii=False) + "\n",
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="resident-export-{day}.json"'},
    )


@require_role("admin")
async def erase_resident(request: Request) -> Response:
    """Erase a resident: the first post asks for the typed confirmation, the second erases."""
    who, resident, errors = await _lookup(request)
    if resident is None:
        return await _page(request, errors=errors, who=who, status=400)
    if not resident.found:
        await _audit_lookup(request, "resident.erase", who, False)
        return await _page(request, errors=[_NOTHING_HELD], who=who, status=404)
    form = await read_form(request)
    reference = str(form.get("reference", "")).strip()
    held = _counts(resident)
    if "confirm" not in form:
        return await _page(request, who=who, reference=reference, held=held, confirming=True)
    problems = []
    if str(form.get("confirm", "")).strip().lower() != CONFIRMATION:
        problems.append(f'Type "{CONFIRMATION}" in the confirmation box to erase.')
    if reference and not _REFERENCE.fullmatch(reference):
        problems.append(
            "A request reference is up to 64 letters, digits and - _ . / (or leave it empty)."
        )
    elif reference and resident.named_in(reference):
        problems.append(
            "The request reference names the resident: use the council's own reference, "
            "which goes into the audit log."
        )
    if problems:
        return await _page(
            request,
            errors=problems,
            who=who,
            reference=reference,
            held=held,
            confirming=True,
            status=400,
        )
    app = app_of(request)
    user = current_user(request)
    assert user is not None  # require_role guarantees it
    done = await erase(
        app[REDIS],
        app[LAYOUT],
        resident,
        app[AUDIT],
        actor=user.username,
        request=reference,
        ip=client_ip(request),
    )
    return await _page(request, erased=done)


def setup(app: ConsoleApp) -> None:
    """Add the residents' rights routes and navigation (admins only)."""
    app[LAYOUT] = Layout.from_endpoints(ROOT / "endpoints.yml", app[NAMESPACE])
    app.add_route("/admin/residents", residents_page)
    app.add_route("/admin/residents/export", export_resident, methods=["POST"])
    app.add_route("/admin/residents/erase", erase_resident, methods=["POST"])
    add_nav(app, "Residents' data", "/admin/residents", "admin")

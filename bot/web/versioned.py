"""Console pages every versioned content section shares: publish, approval, withdraw, history.

The knowledge base (:mod:`bot.web.editor`) and the response texts
(:mod:`bot.web.responses_editor`) keep their content in a :class:`bot.versioning.VersionedStore`.
A :class:`VersionedPages` gives each of them the same actions under its own path, with its own
audit names (``{audit}.save``, ``{audit}.publish``, ``{audit}.publish.blocked``,
``{audit}.approval.request``, ``{audit}.archive``, ``{audit}.rollback``,
``{audit}.rollback.blocked``, ``{audit}.approval.teams``):

- ``POST {base}/{id}/publish``: publish (``override=1`` admins only; ``approve=N`` a second
  person approving version N);
- ``POST {base}/{id}/approval``: ask for a second person's approval;
- ``POST {base}/{id}/archive``: withdraw from residents;
- ``POST {base}/{id}/rollback`` (``version=N``): restore an earlier version;
- ``GET {base}/{id}/diff?a=&b=``: compare two versions;
- ``GET/POST {settings}``: admins choose the groups (teams) whose publishes need a second person.

The section renders its own item page (:attr:`VersionedPages.show`); :meth:`VersionedPages.
history` gives it the shared parts (versions, pending approval, who may do what).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from bot.errors import EntryInvalidError, EntryNotFoundError, PublishBlockedError
from bot.knowledge.diff import entry_diff
from bot.versioning import VersionedStore
from bot.web import audit
from bot.web.accounts import User
from bot.web.app import AppKey, ConsoleApp, app_of, current_user, read_form, render, require_role

__all__ = ["ItemPage", "VersionedPages", "form_text", "me"]


class ItemPage(Protocol):
    """Renders a section's item page, with problems or a refusal to show (status code)."""

    def __call__(
        self,
        request: Request,
        entry_id: str,
        *,
        errors: list[str] | None = None,
        blocked: list[str] | None = None,
        status: int = 200,
    ) -> Awaitable[Response]:
        """The page of ``entry_id``."""
        ...


def me(request: Request) -> User:
    """The signed-in user (the pages require a role, so there is one)."""
    user = current_user(request)
    assert user is not None  # require_role guarantees it
    return user


def form_text(form: FormData, name: str) -> str:
    """A form field's text, stripped ("" when absent)."""
    value = form.get(name, "")
    return value.strip() if isinstance(value, str) else ""


def _gate_override(form: FormData, user: User) -> bool:
    """Whether the form overrides the regression gate (403 unless ``user`` is an admin)."""
    override = form_text(form, "override") == "1"
    if override and not user.has_role("admin"):
        raise HTTPException(403, "Only an admin can override the regression gate.")
    return override


@dataclass(frozen=True)
class VersionedPages:
    """The shared actions of one content section (see the module docstring).

    Attributes:
        store: Where the app keeps the section's store.
        base: Path of the items (``/editor/entry``): ``{base}/{id}`` is an item's page.
        audit: Prefix of the audit actions (``kb``).
        object_type: The audit log's object type (``kb_entry``).
        settings_type: The audit log's object type of the approval settings (``kb_settings``).
        show: Renders an item's page.
        settings: Path of the admins' approval settings page.
        groups: The groups (teams) an admin can require approval for.
        missing: What a 404 says for an unknown id.
    """

    store: AppKey[Any]
    base: str
    audit: str
    object_type: str
    settings_type: str
    show: ItemPage
    settings: str
    groups: Callable[[Request], Awaitable[list[str]]]
    missing: str = "There is no such entry."

    def of(self, request: Request) -> VersionedStore[Any]:
        """The section's store."""
        store: VersionedStore[Any] = app_of(request)[self.store]
        return store

    async def existing(self, request: Request) -> str:
        """The path's ``entry_id``, which must have been saved (404 otherwise)."""
        entry_id = str(request.path_params["entry_id"])
        try:
            await self.of(request).head(entry_id)
        except EntryNotFoundError:
            raise HTTPException(404, self.missing) from None
        return entry_id

    def _done(self, entry_id: str, done: str) -> Response:
        return RedirectResponse(f"{self.base}/{entry_id}?done={done}", status_code=302)

    async def history(self, request: Request, entry_id: str) -> dict[str, Any]:
        """What every item page shows besides the item: history, approval, the user's rights."""
        store = self.of(request)
        head = await store.head(entry_id)
        return {
            "head": head,
            "base": self.base,
            "versions": list(reversed(await store.versions(entry_id))),
            "pending": await store.pending_approval(entry_id),
            "needs_approval": await store.approval_required(store.group(head.entry)),
            "group": store.group(head.entry),
            "done": request.query_params.get("done", ""),
            "is_admin": me(request).has_role("admin"),
            "me": me(request).username,
        }

    async def saved(
        self, request: Request, entry_id: str, number: int, fields: Iterable[str]
    ) -> Response:
        """Audit a saved draft and go back to the item's page."""
        detail = {"version": number, "fields": list(fields)}
        await audit.record(request, f"{self.audit}.save", self.object_type, entry_id, detail)
        return self._done(entry_id, "saved")

    async def publish(self, request: Request) -> Response:
        """Publish the working copy through the section's gate (admins may override).

        On a group that needs a second person, the form's ``approve`` names the version number
        the approver looked at; only that version, still the one requested, is published.
        """
        entry_id = await self.existing(request)
        form = await read_form(request)
        user = me(request)
        override = _gate_override(form, user)
        store = self.of(request)
        reason, override_by = form_text(form, "reason"), user.username if override else ""
        approving = form_text(form, "approve")
        try:
            if approving:
                try:
                    number = int(approving)
                except ValueError:
                    raise HTTPException(400, "Say which version you approve.") from None
                version = await store.approve(
                    entry_id, number, user.username, reason, override_by=override_by
                )
            else:
                version = await store.publish(
                    entry_id, user.username, reason, override_by=override_by
                )
        except EntryInvalidError as exc:
            return await self.show(request, entry_id, errors=exc.problems, status=422)
        except PublishBlockedError as exc:
            await audit.record(
                request, f"{self.audit}.publish.blocked", self.object_type, entry_id, {}
            )
            return await self.show(request, entry_id, blocked=exc.broken, status=409)
        detail: dict[str, Any] = {"version": version.number}
        if version.approved_by:
            detail["approved"] = int(approving)
            detail["author"] = version.author
        if override:
            detail["override"] = True
        await audit.record(request, f"{self.audit}.publish", self.object_type, entry_id, detail)
        return self._done(entry_id, "published")

    async def request_approval(self, request: Request) -> Response:
        """Ask a second person to approve the working copy."""
        entry_id = await self.existing(request)
        try:
            head = await self.of(request).request_approval(entry_id, me(request).username)
        except EntryInvalidError as exc:
            return await self.show(request, entry_id, errors=exc.problems, status=422)
        except PublishBlockedError as exc:
            return await self.show(request, entry_id, blocked=exc.broken, status=409)
        detail = {"version": head.number}
        await audit.record(
            request, f"{self.audit}.approval.request", self.object_type, entry_id, detail
        )
        return self._done(entry_id, "approval-requested")

    async def archive(self, request: Request) -> Response:
        """Withdraw an item from residents."""
        entry_id = await self.existing(request)
        form = await read_form(request)
        version = await self.of(request).archive(
            entry_id, me(request).username, form_text(form, "reason")
        )
        detail = {"version": version.number}
        await audit.record(request, f"{self.audit}.archive", self.object_type, entry_id, detail)
        return self._done(entry_id, "archived")

    async def rollback(self, request: Request) -> Response:
        """Restore an earlier version.

        A published one is republished, or waits for approval on a group that needs a second
        person.
        """
        entry_id = await self.existing(request)
        form = await read_form(request)
        user = me(request)
        override = _gate_override(form, user)
        try:
            number = int(form_text(form, "version"))
            version = await self.of(request).rollback(
                entry_id,
                number,
                user.username,
                form_text(form, "reason"),
                override_by=user.username if override else "",
            )
        except (ValueError, EntryNotFoundError):
            raise HTTPException(400, "Choose a version of this entry.") from None
        except PublishBlockedError as exc:
            await audit.record(
                request, f"{self.audit}.rollback.blocked", self.object_type, entry_id, {}
            )
            return await self.show(request, entry_id, blocked=exc.broken, status=409)
        detail = {"version": version.number, "restored": number, "override": override}
        await audit.record(request, f"{self.audit}.rollback", self.object_type, entry_id, detail)
        if version.requested_by:  # a group that needs approval: the rollback waits for it
            await audit.record(
                request,
                f"{self.audit}.approval.request",
                self.object_type,
                entry_id,
                {"version": version.number},
            )
            return self._done(entry_id, "rolled-back-approval-requested")
        return self._done(entry_id, "rolled-back")

    async def diff(self, request: Request) -> Response:
        """Compare two versions of an item (default: the previous and the latest)."""
        entry_id = await self.existing(request)
        store = self.of(request)
        versions = await store.versions(entry_id)
        try:
            a = int(request.query_params.get("a", versions[-2].number if len(versions) > 1 else 1))
            b = int(request.query_params.get("b", versions[-1].number))
            before, after = await store.version(entry_id, a), await store.version(entry_id, b)
        except (ValueError, EntryNotFoundError):
            raise HTTPException(404, "There is no such version.") from None
        return render(
            request,
            "editor/diff.html",
            {
                "entry_id": entry_id,
                "base": self.base,
                "before": before,
                "after": after,
                "versions": versions,
                "diffs": entry_diff(before.entry, after.entry),
            },
        )

    async def approval_settings(self, request: Request) -> Response:
        """Choose which groups need a second person to approve publishes (admins)."""
        store = self.of(request)
        groups = await self.groups(request)
        if request.method == "POST":
            form = await read_form(request)
            wanted = {v for v in form.getlist("teams") if isinstance(v, str)}
            for group in groups:
                await store.set_approval_required(group, group in wanted)
            detail = {"teams": sorted(wanted & set(groups))}
            await audit.record(
                request, f"{self.audit}.approval.teams", self.settings_type, "approval", detail
            )
            return RedirectResponse(f"{self.settings}?done=saved", status_code=302)
        required = {g for g in groups if await store.approval_required(g)}
        context = {
            "teams": groups,
            "required": required,
            "action": self.settings,
            "word": store.group_word,
            "done": request.query_params.get("done", ""),
        }
        return render(request, "editor/approval.html", context)

    def add_routes(self, app: ConsoleApp) -> None:
        """Add the shared actions under :attr:`base` and the approval settings page.

        Call it before adding the section's ``{base}/{entry_id}`` page, so that a settings
        page under :attr:`base` is matched first.
        """
        editor = require_role("editor")
        item = self.base + "/{entry_id}"
        app.add_route(self.settings, require_role("admin")(self.approval_settings), ["GET", "POST"])
        app.add_route(f"{item}/publish", editor(self.publish), methods=["POST"])
        app.add_route(f"{item}/approval", editor(self.request_approval), methods=["POST"])
        app.add_route(f"{item}/archive", editor(self.archive), methods=["POST"])
        app.add_route(f"{item}/rollback", editor(self.rollback), methods=["POST"])
        app.add_route(f"{item}/diff", editor(self.diff))

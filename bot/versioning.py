"""Content editors change in the console: every version kept, published on purpose, audited.

The knowledge base's entries (:mod:`bot.knowledge.store`) and the editors' changes to the
Rasa responses (:mod:`bot.response_edits`) are both a :class:`VersionedStore`: a working copy
(maybe a draft), the full history, the published copy residents are served, and second-person
approval for the groups (teams) that need it. Keys, under ``{ns}:{prefix}:``:

- ``head`` hash: id -> the latest version (the editors' working copy, maybe a draft);
- ``versions:{id}`` list and ``seq:{id}`` counter: every version of an item;
- ``live`` hash: id -> the published item residents are served;
- ``rev`` counter: bumped on every change to ``live``, so running servers notice a publish by
  reading one key (at most every second or so) instead of the whole hash;
- ``approval`` set: groups whose publishes need a second person; ``pending`` hash: id -> who
  asked for approval of which version. Any new version of the item ends the request, and
  :meth:`VersionedStore.approve` publishes exactly the requested version, by someone who
  neither wrote nor requested it.

Nothing is deleted: a rollback adds a new version with old content.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, Protocol, Self, TypeVar

import redis
import redis.asyncio

from bot.errors import EntryInvalidError, EntryNotFoundError, PublishBlockedError
from bot.keys import key

__all__ = ["Version", "Versionable", "VersionedStore", "changed_fields"]


class Versionable(Protocol):
    """What a store keeps: an id, a status (``draft``, ``published``, ``archived``), JSON."""

    @property
    def id(self) -> str:
        """Stable identifier."""
        ...

    @property
    def status(self) -> str:
        """``draft``, ``published`` or ``archived``."""
        ...

    def with_status(self, status: str) -> Self:
        """A copy with another status."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        ...


T = TypeVar("T", bound=Versionable)


@dataclass(frozen=True)
class Version(Generic[T]):
    """One saved state of an item.

    Attributes:
        number: 1 for the first save, then counting up.
        entry: The item as saved.
        author: Who saved it.
        at: When (UTC).
        reason: Why, in the editor's words.
        action: ``save``, ``publish``, ``approve``, ``archive``, ``rollback`` or ``import``.
        changes: The fields that differ from the previous version.
        override_by: The admin who overrode the regression gate, if anyone did.
        approved_by: The second person who approved this version's content (groups that need
            approval); ``author`` is then the author of the approved content.
        requested_by: Who asked for this version to be approved (a rollback on a group that
            needs approval asks at once).
    """

    number: int
    entry: T
    author: str
    at: datetime
    reason: str
    action: str
    changes: tuple[str, ...] = ()
    override_by: str = ""
    approved_by: str = ""
    requested_by: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "number": self.number,
            "entry": self.entry.to_dict(),
            "author": self.author,
            "at": self.at.isoformat(),
            "reason": self.reason,
            "action": self.action,
            "changes": list(self.changes),
            "override_by": self.override_by,
            "approved_by": self.approved_by,
            "requested_by": self.requested_by,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], load: Callable[[dict[str, Any]], T]) -> Version[T]:
        """Build a version from :meth:`to_dict` output; ``load`` reads the item."""
        return cls(
            number=int(data["number"]),
            entry=load(data["entry"]),
            author=str(data["author"]),
            at=datetime.fromisoformat(data["at"]),
            reason=str(data["reason"]),
            action=str(data["action"]),
            changes=tuple(data.get("changes") or ()),
            override_by=str(data.get("override_by") or ""),
            approved_by=str(data.get("approved_by") or ""),
            requested_by=str(data.get("requested_by") or ""),
        )


def changed_fields(before: Versionable | None, after: Versionable) -> tuple[str, ...]:
    """Return the names of the fields that differ (all of them for a new item)."""
    new = after.to_dict()
    if before is None:
        return tuple(new)
    old = before.to_dict()
    return tuple(name for name in sorted(set(old) | set(new)) if old.get(name) != new.get(name))


class VersionedStore(Generic[T]):
    """Items, their versions and their published copies under ``{ns}:{prefix}:``.

    Args:
        redis: Asyncio client with ``decode_responses=True``.
        namespace: Key namespace (``"cr"`` in production).
        prefix: The kind of content (``"kb"``, ``"responses"``).
        load: Reads an item from its :meth:`~Versionable.to_dict` output.
        problems: What is wrong with an item (empty: it may be saved and published).
        group: The unit of second-person approval an item belongs to (a team).
        group_word: How editors call that unit in messages (``"team"``).
        now: Wall-clock time for version records.
    """

    def __init__(
        self,
        redis: redis.asyncio.Redis,
        namespace: str,
        prefix: str,
        *,
        load: Callable[[dict[str, Any]], T],
        problems: Callable[[T], list[str]],
        group: Callable[[T], str],
        group_word: str = "team",
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.redis = redis
        self.namespace = namespace
        self.prefix = prefix
        self.group = group
        self.group_word = group_word
        self._load = load
        self._problems = problems
        self._now = now

    def _key(self, *parts: str) -> str:
        return key(self.namespace, self.prefix, *parts)

    def _version(self, raw: str) -> Version[T]:
        return Version.from_dict(json.loads(raw), self._load)

    def problems(self, item: T) -> list[str]:
        """What is wrong with ``item`` (empty when it can be saved and published)."""
        return self._problems(item)

    # reading

    async def get(self, entry_id: str) -> T:
        """Return the working copy (latest version) of an item.

        Raises:
            EntryNotFoundError: No such item.
        """
        return (await self.head(entry_id)).entry

    async def head(self, entry_id: str) -> Version[T]:
        """Return the latest version of an item.

        Raises:
            EntryNotFoundError: No such item.
        """
        raw = await self.redis.hget(self._key("head"), entry_id)
        if raw is None:
            raise EntryNotFoundError(entry_id)
        return self._version(raw)

    async def live(self, entry_id: str) -> T | None:
        """Return the published item residents are served, if any."""
        raw = await self.redis.hget(self._key("live"), entry_id)
        return self._load(json.loads(raw)) if raw else None

    async def all_live(self) -> list[T]:
        """Return every published item, sorted by id."""
        raw = await self.redis.hgetall(self._key("live"))
        return sorted((self._load(json.loads(v)) for v in raw.values()), key=lambda e: e.id)

    async def revision(self) -> str | None:
        """The counter bumped on every change to the published items (None: never changed)."""
        rev: str | None = await self.redis.get(self._key("rev"))
        return rev

    async def heads(self) -> list[Version[T]]:
        """Return the latest version of every item, sorted by id."""
        raw = await self.redis.hgetall(self._key("head"))
        return sorted((self._version(v) for v in raw.values()), key=lambda v: v.entry.id)

    async def versions(self, entry_id: str) -> list[Version[T]]:
        """Return every version of an item, oldest first.

        Raises:
            EntryNotFoundError: No such item.
        """
        raw = await self.redis.lrange(self._key("versions", entry_id), 0, -1)
        if not raw:
            raise EntryNotFoundError(entry_id)
        return sorted((self._version(v) for v in raw), key=lambda v: v.number)

    async def version(self, entry_id: str, number: int) -> Version[T]:
        """Return one version of an item.

        Raises:
            EntryNotFoundError: No such item or version.
        """
        for version in await self.versions(entry_id):
            if version.number == number:
                return version
        raise EntryNotFoundError(entry_id, number)

    # writing

    async def _append(
        self,
        entry: T,
        author: str,
        reason: str,
        action: str,
        *,
        live: bool | None = None,
        override_by: str = "",
        approved_by: str = "",
        requested_by: str = "",
        expect: int | None = None,
    ) -> Version[T]:
        """Store a new version; ``live`` True publishes it, False withdraws the live copy.

        Every new version ends a pending approval request (the request was for the content
        of an earlier version), unless it asks for approval itself (``requested_by``). With
        ``expect``, the version is stored only while the latest version is still number
        ``expect`` (raises :class:`PublishBlockedError` otherwise).
        """
        seq = self._key("seq", entry.id)
        async with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(seq)  # a concurrent save makes the transaction retry
                    latest = int(await pipe.get(seq) or 0)
                    if expect is not None and latest != expect:
                        raise PublishBlockedError(
                            entry.id,
                            [
                                f"version {expect} was changed (now version {latest}) after "
                                "approval was asked for; ask for approval again"
                            ],
                        )
                    previous = await pipe.hget(self._key("head"), entry.id)
                    before = self._version(previous).entry if previous else None
                    version = Version(
                        number=latest + 1,
                        entry=entry,
                        author=author,
                        at=self._now(),
                        reason=reason,
                        action=action,
                        changes=changed_fields(before, entry),
                        override_by=override_by,
                        approved_by=approved_by,
                        requested_by=requested_by,
                    )
                    payload = json.dumps(version.to_dict())
                    pipe.multi()
                    pipe.set(seq, version.number)
                    pipe.rpush(self._key("versions", entry.id), payload)
                    pipe.hset(self._key("head"), entry.id, payload)
                    if live is True:
                        pipe.hset(self._key("live"), entry.id, json.dumps(entry.to_dict()))
                    elif live is False:
                        pipe.hdel(self._key("live"), entry.id)
                    if live is not None:
                        pipe.incr(self._key("rev"))
                    if requested_by:
                        request = {"requested_by": requested_by, "version": version.number}
                        pipe.hset(self._key("pending"), entry.id, json.dumps(request))
                    else:
                        pipe.hdel(self._key("pending"), entry.id)
                    await pipe.execute()
                    return version
                except redis.WatchError:
                    continue

    def _check(self, entry: T) -> None:
        problems = self._problems(entry)
        if problems:
            raise EntryInvalidError(entry.id, problems)

    async def save_draft(self, entry: T, author: str, reason: str) -> Version[T]:
        """Save an edit as a draft; residents keep the published copy until it is published.

        A save ends any pending approval request: the approver must see what goes live.

        Raises:
            EntryInvalidError: The item has problems (nothing is stored).
        """
        draft = entry.with_status("draft")
        self._check(draft)
        return await self._append(draft, author, reason, "save")

    async def _gate(self, entry: T, override_by: str) -> None:
        """Refuse a publish that breaks something (:class:`PublishBlockedError`); none here."""

    async def publish(
        self, entry_id: str, author: str, reason: str, *, override_by: str = ""
    ) -> Version[T]:
        """Publish the working copy of an item: residents get it within seconds.

        Groups that need a second person publish only through :meth:`approve`.

        Args:
            entry_id: The item.
            author: Who publishes.
            reason: Why.
            override_by: An admin who accepts that test conversations break (the caller
                checks the role; the version records the name).

        Raises:
            EntryNotFoundError: No such item.
            EntryInvalidError: The working copy has problems.
            PublishBlockedError: The group needs approval, or the gate refused and no admin
                overrode it.
        """
        entry = (await self.get(entry_id)).with_status("published")
        self._check(entry)
        if await self.approval_required(self.group(entry)):
            raise PublishBlockedError(
                entry_id,
                [
                    f"{self.group_word} {self.group(entry)} needs a second person: "
                    "ask for approval instead"
                ],
            )
        await self._gate(entry, override_by)
        return await self._append(
            entry, author, reason, "publish", live=True, override_by=override_by
        )

    async def approve(
        self, entry_id: str, number: int, approver: str, reason: str, *, override_by: str = ""
    ) -> Version[T]:
        """Publish version ``number`` as a second person; it must be the version requested.

        The new version names the author of the approved content as its author and
        ``approver`` as ``approved_by``.

        Raises:
            EntryNotFoundError: No such item or version.
            EntryInvalidError: The version has problems.
            PublishBlockedError: Nobody asked for approval of version ``number``, it was
                edited since, the approver wrote or requested it, or the gate refused and no
                admin overrode it.
        """
        pending = await self.pending_approval(entry_id)
        if pending is None or pending[1] != number:
            raise PublishBlockedError(
                entry_id, [f"nobody is waiting for approval of version {number}"]
            )
        requested = await self.version(entry_id, number)
        if approver in {requested.author, pending[0]}:
            raise PublishBlockedError(
                entry_id, ["a second person must approve: you wrote or asked for this version"]
            )
        entry = requested.entry.with_status("published")
        self._check(entry)
        await self._gate(entry, override_by)
        note = f"{reason} (approved by {approver})" if reason else f"approved by {approver}"
        return await self._append(
            entry,
            requested.author,
            note,
            "approve",
            live=True,
            override_by=override_by,
            approved_by=approver,
            expect=number,
        )

    async def archive(self, entry_id: str, author: str, reason: str) -> Version[T]:
        """Withdraw an item: residents stop getting it within seconds.

        Raises:
            EntryNotFoundError: No such item.
        """
        entry = (await self.get(entry_id)).with_status("archived")
        return await self._append(entry, author, reason, "archive", live=False)

    async def rollback(
        self, entry_id: str, number: int, author: str, reason: str, *, override_by: str = ""
    ) -> Version[T]:
        """Restore the content of version ``number`` as a new version.

        A version that was published is published again (through the gate); on a group that
        needs a second person, it becomes the working copy waiting for approval instead. A
        draft or archived one becomes the working copy / withdraws the item.

        Raises:
            EntryNotFoundError: No such item or version.
            PublishBlockedError: Republishing would break test conversations.
        """
        old = (await self.version(entry_id, number)).entry
        why = f"{reason} (rollback to version {number})"
        if old.status == "published":
            if await self.approval_required(self.group(old)):
                return await self._append(
                    old.with_status("draft"), author, why, "rollback", requested_by=author
                )
            await self._gate(old, override_by)
            return await self._append(
                old, author, why, "rollback", live=True, override_by=override_by
            )
        return await self._append(
            old, author, why, "rollback", live=False if old.status == "archived" else None
        )

    async def import_entry(self, entry: T, author: str, reason: str) -> Version[T] | None:
        """Load an item from content files; nothing is stored when it is unchanged.

        Raises:
            EntryInvalidError: The item has problems.
        """
        self._check(entry)
        try:
            if await self.get(entry.id) == entry:
                return None
        except EntryNotFoundError:
            pass
        live = {"published": True, "archived": False}.get(entry.status)
        return await self._append(entry, author, reason, "import", live=live)

    # second-person approval

    async def set_approval_required(self, group: str, required: bool) -> None:
        """Require (or stop requiring) a second person to approve the group's publishes."""
        if required:
            await self.redis.sadd(self._key("approval"), group)
        else:
            await self.redis.srem(self._key("approval"), group)

    async def approval_required(self, group: str) -> bool:
        """Return whether the group's publishes need a second person."""
        return bool(await self.redis.sismember(self._key("approval"), group))

    async def request_approval(self, entry_id: str, author: str) -> Version[T]:
        """Mark the working copy as waiting for a second person's approval.

        Raises:
            EntryNotFoundError: No such item.
            EntryInvalidError: The working copy has problems.
            PublishBlockedError: The item changed while asking.
        """
        head = await self.head(entry_id)
        self._check(head.entry)
        request = {"requested_by": author, "version": head.number}
        # only while that version is still the latest: a save in between would be approved
        # unseen otherwise
        async with self.redis.pipeline(transaction=True) as pipe:
            await pipe.watch(self._key("seq", entry_id))
            if int(await pipe.get(self._key("seq", entry_id)) or 0) != head.number:
                raise PublishBlockedError(
                    entry_id, ["it changed since you loaded it: reload and ask again"]
                )
            pipe.multi()
            pipe.hset(self._key("pending"), entry_id, json.dumps(request))
            try:
                await pipe.execute()
            except redis.WatchError:
                raise PublishBlockedError(
                    entry_id, ["it changed since you loaded it: reload and ask again"]
                ) from None
        return head

    async def pending_approval(self, entry_id: str) -> tuple[str, int] | None:
        """Return (who asked, which version) when the item waits for approval."""
        raw = await self.redis.hget(self._key("pending"), entry_id)
        if raw is None:
            return None
        data = json.loads(raw)
        return str(data["requested_by"]), int(data["version"])

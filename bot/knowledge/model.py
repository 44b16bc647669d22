"""Knowledge-base entries, their versions and the checks an entry must pass before it is saved.

An entry is one answer editors maintain: the topic (an intent of the contract or a new topic)
it answers, example questions residents ask, the answer text with per-channel variants (and
the same in other languages: Welsh, ``translations``), the team that owns it, when it must be
reviewed, and its publication state. Every change is kept as
a :class:`Version` with who, when, what changed and why (:mod:`bot.versioning`).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlsplit

from bot import versioning
from bot.versioning import changed_fields

__all__ = [
    "ALLOWED_SCHEMES",
    "CHANNELS",
    "SHORT_CHANNELS",
    "STATUSES",
    "TRANSLATION_LANGUAGES",
    "Entry",
    "Version",
    "changed_fields",
    "entry_problems",
    "plain_text",
    "text_problems",
]

STATUSES = ("draft", "published", "archived")
# Channels that may carry their own variant; "default" serves every other channel.
CHANNELS = ("default", "sms", "whatsapp", "messenger", "twitter", "telegram")
# Languages an answer may be given in besides English (ISO 639-1): Welsh.
TRANSLATION_LANGUAGES = ("cy",)
# SMS and WhatsApp variants must stay short: long texts split or get cut on handsets.
SHORT_CHANNELS = {"sms": 320, "whatsapp": 700}
_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,79}$")
_URL = re.compile(r"https?://\S*")
_HOST = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
# Answers are plain text sent to residents' phones and browsers: no markup, and links only
# to web pages, phone numbers and e-mail addresses.
_TAG = re.compile(r"<\s*/?\s*[a-z!?][^<>]*>", re.IGNORECASE)
_ENTITY = re.compile(r"&(?:#\d+|#x[0-9a-f]+|[a-z]+\d*);", re.IGNORECASE)
_SCHEME = re.compile(r"(?<![a-z0-9+.-])([a-z][a-z0-9+.-]{1,30}):(?=\S)", re.IGNORECASE)
ALLOWED_SCHEMES = ("https", "http", "tel", "mailto")
# Schemes a browser or app would act on (any other "word:" is ordinary text, like "Note:").
# Browsers ignore tabs and line breaks inside a link, so "java<newline>script:" counts too.
_ACTIVE_SCHEMES = (
    "javascript", "vbscript", "livescript", "view-source", "intent", "mhtml", "ms-its",
    "about", "blob", "data", "file", "ftp", "jar", "res", "wss", "ws",
)  # fmt: skip
_ACTIVE = re.compile(
    r"(?<![a-z0-9+.-])(?:"
    + "|".join("[\t\r\n]*".join(map(re.escape, scheme)) for scheme in _ACTIVE_SCHEMES)
    + r")[\t\r\n]*:(?=\S)",
    re.IGNORECASE,
)
_TEL = re.compile(r"tel:\+?[0-9][0-9 ()-]{2,20}[0-9]")
_MAILTO = re.compile(r"mailto:[^\s@<>\"]+@[^\s@<>\"]+\.[a-z]{2,63}\b", re.IGNORECASE)


@dataclass(frozen=True)
class Entry:
    """One knowledge-base answer.

    Attributes:
        id: Stable slug, e.g. ``council-tax-single-person-discount``.
        topic: The intent (or new topic) it answers.
        questions: Example questions residents ask; selection compares messages to these.
        answers: Answer text per channel; ``default`` is required and serves other channels.
        owner_team: The team responsible for the content.
        review_by: The date by which the owner must check it again.
        status: ``draft``, ``published`` or ``archived``.
        publish_from: Not served before this time (UTC), if set.
        expire_at: Not served from this time (UTC), if set.
        title: A short name editors see in lists.
        translations: The answer in other languages: language (``cy``) -> channel -> text,
            with the same channels and rules as ``answers`` (``default`` required).
    """

    id: str
    topic: str
    questions: tuple[str, ...]
    answers: dict[str, str]
    owner_team: str
    review_by: date
    status: str = "draft"
    publish_from: datetime | None = None
    expire_at: datetime | None = None
    title: str = ""
    translations: dict[str, dict[str, str]] = field(default_factory=dict)

    def answer_in(self, language: str, channel: str | None) -> str | None:
        """The answer in ``language`` for ``channel`` (as :meth:`answer_for`), None without one.

        English (``en``) is ``answers``; another language is its ``translations`` entry.
        """
        if language == "en":
            return self.answer_for(channel)
        answers = self.translations.get(language) or {}
        text = answers.get(channel or "", "") or answers.get("default", "")
        return plain_text(text) if text.strip() else None

    def answer_for(self, channel: str | None) -> str:
        """Return the variant for ``channel``, or the default text, as safe plain text.

        Saving refuses markup and unsafe links already (:func:`entry_problems`); entries
        stored before that rule are cleaned here too (:func:`plain_text`).
        """
        return plain_text(self.answers.get(channel or "", "") or self.answers["default"])

    def live_at(self, now: datetime) -> bool:
        """Return whether a published entry is inside its publication window at ``now``."""
        if self.publish_from is not None and now < self.publish_from:
            return False
        return self.expire_at is None or now < self.expire_at

    def with_status(self, status: str) -> Entry:
        """Return a copy with another status."""
        return replace(self, status=status)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON/YAML-ready dict (dates as ISO strings, empty optionals dropped)."""
        data = asdict(self)
        data["questions"] = list(self.questions)
        data["review_by"] = self.review_by.isoformat()
        for name in ("publish_from", "expire_at"):
            value = data.pop(name)
            if value is not None:
                data[name] = value.isoformat()
        if not self.title:
            data.pop("title")
        if not self.translations:
            data.pop("translations")  # entries without any keep their earlier form
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Entry:
        """Build an entry from :meth:`to_dict` output (or a YAML file's mapping).

        Raises:
            KeyError: A required field is missing.
            ValueError: A date or time cannot be parsed.
        """
        review = data["review_by"]
        return cls(
            id=str(data["id"]),
            topic=str(data["topic"]),
            questions=tuple(str(q) for q in data.get("questions") or ()),
            answers={str(k): str(v) for k, v in (data.get("answers") or {}).items()},
            owner_team=str(data["owner_team"]),
            review_by=review if isinstance(review, date) else date.fromisoformat(str(review)),
            status=str(data.get("status", "draft")),
            publish_from=_when(data.get("publish_from")),
            expire_at=_when(data.get("expire_at")),
            title=str(data.get("title") or ""),
            translations={
                str(language): {str(k): str(v) for k, v in (answers or {}).items()}
                for language, answers in (data.get("translations") or {}).items()
            },
        )


def _when(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    # a time without a zone is read as UTC, the zone every stored time uses
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


Version = versioning.Version[Entry]
"""One saved state of an entry (:class:`bot.versioning.Version`)."""


def _link_problems(channel: str, text: str) -> list[str]:
    problems = []
    for match in _URL.finditer(text):
        url = match.group(0).rstrip(".,;:!?)")
        parts = urlsplit(url)
        host = (parts.hostname or "").lower() if parts.netloc else ""
        if parts.scheme != "https":
            problems.append(f"{channel}: link {url} must start with https://")
        elif not _HOST.match(host) or " " in url:
            problems.append(f"{channel}: link {url} is not a valid web address")
    # a scheme-less or mistyped scheme ("htps://", "https//") is a broken link too
    for bad in re.findall(r"\b(?!https?://)[a-z]{3,6}:?//\S+", text):
        problems.append(f"{channel}: link {bad} is not a valid web address")
    return problems


def _markup_problems(channel: str, text: str) -> list[str]:
    problems = []
    for tag in dict.fromkeys(m.group(0) for m in _TAG.finditer(text)):
        problems.append(f"{channel}: remove the HTML {tag[:40]}: answers are plain text")
    for code in dict.fromkeys(m.group(0) for m in _ENTITY.finditer(text)):
        problems.append(f"{channel}: write the character instead of the HTML code {code}")
    schemes = [re.sub(r"\s", "", m.group(0)).lower() for m in _ACTIVE.finditer(text)]
    schemes += [
        f"{m.group(1).lower()}:"
        for m in _SCHEME.finditer(text)
        if m.group(1).lower() not in ALLOWED_SCHEMES and text.startswith("//", m.end())
    ]
    for scheme in dict.fromkeys(schemes):
        problems.append(
            f"{channel}: link {scheme} is not allowed; use https://, tel: or mailto: links only"
        )
    for match in re.finditer(r"\b(tel|mailto):\S*", text, re.IGNORECASE):
        link = match.group(0).rstrip(".,;:!?)")
        valid = _TEL if match.group(1).lower() == "tel" else _MAILTO
        if not valid.fullmatch(link):
            problems.append(f"{channel}: link {link[:60]} is not a valid phone or e-mail link")
    return problems


def text_problems(where: str, text: str) -> list[str]:
    """What keeps ``text`` from being sent to residents: markup, unsafe or broken links.

    ``where`` starts each problem (a channel name); shared by knowledge-base answers and the
    editors' response texts (:mod:`bot.response_edits`).
    """
    return _link_problems(where, text) + _markup_problems(where, text)


def plain_text(text: str) -> str:
    """Return ``text`` without HTML tags and without unsafe link schemes.

    Defence in depth for what residents are sent: entries pass :func:`entry_problems` when
    saved, but one stored before that check, or written to Redis by other means, must not
    reach a resident as markup or a script link.
    """
    cleaned = text
    while True:  # until stable: removing one tag must not leave another behind
        stripped = _ACTIVE.sub("", _TAG.sub("", cleaned))
        if stripped == cleaned:
            return cleaned
        cleaned = stripped


def _answers_problems(where: str, answers: dict[str, str]) -> list[str]:
    problems = []
    for channel, text in answers.items():
        if channel not in CHANNELS:
            problems.append(f"{where}.{channel}: unknown channel (use {', '.join(CHANNELS)})")
            continue
        limit = SHORT_CHANNELS.get(channel)
        if limit is not None and len(text) > limit:
            problems.append(f"{where}.{channel}: {len(text)} characters, at most {limit}")
        problems.extend(f"{where}.{p}" for p in text_problems(channel, text))
    return problems


def entry_problems(entry: Entry) -> list[str]:
    """Return what is wrong with ``entry`` (empty when it can be saved).

    Links are checked for form only; nothing is fetched over the network.
    """
    problems = []
    if not _ID.match(entry.id):
        problems.append("id: use 2-80 lower-case letters, digits and hyphens")
    if not entry.topic.strip():
        problems.append("topic: choose the topic this entry answers")
    if entry.status not in STATUSES:
        problems.append(f"status: must be one of {', '.join(STATUSES)}")
    if not [q for q in entry.questions if q.strip()]:
        problems.append("questions: give at least one example question")
    if not entry.answers.get("default", "").strip():
        problems.append("answers.default: the answer must not be empty")
    if not entry.owner_team.strip():
        problems.append("owner_team: name the team that owns this answer")
    problems.extend(_answers_problems("answers", entry.answers))
    for language, answers in entry.translations.items():
        where = f"translations.{language}"
        if language not in TRANSLATION_LANGUAGES:
            known = ", ".join(TRANSLATION_LANGUAGES)
            problems.append(f"{where}: unknown language (use {known})")
            continue
        if not answers.get("default", "").strip():
            problems.append(f"{where}.default: the answer must not be empty")
        problems.extend(_answers_problems(where, answers))
    if entry.publish_from and entry.expire_at and entry.expire_at <= entry.publish_from:
        problems.append("expire_at: must be after publish_from")
    return problems

"""A resident asks what the council holds about them, then asks for it to be erased (UK GDPR).

Two residents talk to the council: Priya on WhatsApp (handed off to a person when the bot did
not understand her, so her question is kept redacted for the reports; reported a missed bin, a
reply that could not be delivered) and on Telegram where she gave her email address;
Tom on WhatsApp (handed off too, reported his own missed bin). Every store is written through
the project's own code where it is settled (inbox, handoff queue, outbox, missed-bin reports,
Rasa's tracker store); the delivery states and failed sends in the layout
``bot/channels/delivery.py`` documents. Priya's data is exported, then erased; afterwards every
key of the namespace and the tracker store is read, and nothing of Priya may be left (phone
number, ids, message ids, name, words), while Tom's export is unchanged.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio
from PIL import Image
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import BotUttered, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from bot.bins.missed import MissedReports
from bot.bins.model import BinType
from bot.channels.base import InboundMessage, OutboundMessage
from bot.channels.inbox import Inbox
from bot.channels.outbox import queue_reply
from bot.errors import ConfigError
from bot.handoff.questions import UnansweredQuestions
from bot.handoff.queue import HandoffQueue
from bot.handoff.record import HandoffRecord
from bot.knowledge.review import ReviewQueue
from bot.profile import current as current_profile
from bot.reports.model import ProblemReport
from bot.reports.outbox import ReportOutbox
from bot.reports.store import Subscriber, subscribe
from bot.residents.__main__ import main
from bot.residents.rights import Layout, erase, export, find, leftovers
from bot.services import ROOT
from bot.state import RedisUrlTrackerStore
from bot.web.audit import AuditLog
from bot.webchat.config import WebChatLimits
from bot.webchat.events import EventLog
from bot.webchat.limits import RateLimiter
from bot.webchat.phone import PhoneLink
from bot.webchat.uploads import UploadStore

NOW = datetime(2027, 3, 3, 10, 0, tzinfo=UTC)
ACCOUNT = "+441632960000"


@dataclass
class Seeded:
    """One resident's data as written, and what must (not) be found afterwards."""

    name: str
    phone: str
    email: str
    conversations: list[str]
    words: list[str]  # unique words they wrote, or were sent
    message_ids: list[str] = field(default_factory=list)
    cases: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)

    def needles(self) -> list[str]:
        digits = self.phone.lstrip("+")
        return [
            digits,
            "0" + digits[2:],
            self.email,
            self.name,
            *self.conversations,
            *self.words,
            *self.message_ids,
            *self.cases,
        ]


@pytest.fixture
def layout(namespace: str) -> Layout:
    prefix = "rt" + uuid.uuid4().hex[:10]  # Rasa wants an alphanumeric key prefix
    return Layout(namespace, f"{prefix}:tracker:", f"{prefix}:lock:")


@pytest.fixture
async def cleanup(async_redis: redis.asyncio.Redis, layout: Layout) -> AsyncIterator[None]:
    yield
    keys = [k async for k in async_redis.scan_iter(match=f"{layout.tracker_prefix}*")]
    if keys:
        await async_redis.delete(*keys)


async def _seed(
    client: redis.asyncio.Redis,
    redis_url: str,
    layout: Layout,
    *,
    name: str,
    phone: str,
    uprn: str,
    with_telegram: bool,
) -> Seeded:
    tag = uuid.uuid4().hex[:6]
    # words a resident wrote carry letters only: the report copy is redacted, and a run of
    # digits in them would be replaced by [number] (the test then could not find them)
    word = tag.translate(str.maketrans("0123456789", "ghijklmnop"))
    whatsapp = f"whatsapp:{ACCOUNT}:{phone}"
    resident = Seeded(
        name=name,
        phone=phone,
        email=f"{name.split()[0].lower()}.{tag}@example.org",
        conversations=[whatsapp],
        words=[
            f"wheelie{word}",
            f"agentreply{word}",
            f"note{word}",
            f"undelivered{word}",
            f"kettle{word}",
            f"allotment{word}",
        ],
    )
    ns = layout.namespace
    inbox = Inbox(client, ns)
    store = RedisUrlTrackerStore(
        Domain.empty(), host=redis_url, key_prefix=layout.tracker_prefix.split(":")[0]
    )
    reports = MissedReports(client, ns, retention=30)
    reference = await reports.record(uprn, BinType.GENERAL, date(2027, 3, 1), "whatsapp", NOW)
    resident.references.append(reference)

    conversations = [("whatsapp", ACCOUNT, phone, f"my bin wheelie{word} was missed")]
    if with_telegram:
        chat = str(700_000_000 + int(tag, 16) % 1000)
        telegram = f"telegram:councilbot:{chat}"
        resident.conversations.append(telegram)
        conversations.append(("telegram", "councilbot", chat, f"email me at {resident.email}"))
    for channel, account, sender, text in conversations:
        message_id = f"SM{uuid.uuid4().hex}"
        resident.message_ids.append(message_id)
        message = InboundMessage(
            channel, account, sender, message_id, text, NOW.timestamp(), display_name=name
        )
        await inbox.accept([message])
        conversation = f"{channel}:{account}:{sender}"
        user = UserUttered(
            text,
            parse_data={"text": text, "intent": {"name": "missed_bin", "confidence": 0.9}},
            message_id=message_id,
            metadata={"account": account, "display_name": name, "channel_message_id": message_id},
        )
        bot = BotUttered(f"Sorry about that. Your reference is {reference}.")
        await store.save(DialogueStateTracker.from_events(conversation, [user, bot]))
        await client.set(layout.key("stats", "seen", "2027-03-03", conversation), 1)
        await queue_reply(
            client, ns, conversation, channel, account, sender, OutboundMessage(f"Hi {name}")
        )

    queue = HandoffQueue(client, ns, clock=lambda: NOW)
    record = HandoffRecord(
        conversation_id=whatsapp,
        channel="whatsapp",
        account=ACCOUNT,
        sender=phone,
        reason="low_confidence",
        topic="bin_day",
        priority="P3",
        team="waste",
        created_at=NOW.isoformat(),
        display_name=name,
        transcript=[{"role": "resident", "text": resident.words[0], "at": NOW.isoformat()}],
        entities={"email": [resident.email]} if with_telegram else {},
    )
    case_id = await queue.open(record)
    resident.cases.append(case_id)
    # the report's copy of the question the bot could not answer (bot/handoff/questions.py)
    question = f"can I put a {resident.words[4]} in the bin"
    assert await UnansweredQuestions(client, ns).record(replace(record, case_id=case_id), question)
    assert await queue.claim(case_id, "agent.amy", 300)
    await queue.append_message(whatsapp, "agent", resident.words[1])
    await queue.add_note(case_id, "agent.amy", resident.words[2])

    # the review queue (bot/knowledge/review.py): a choice in a clarifying question, pending,
    # and one an editor approved as an example
    review = ReviewQueue(client, ns)
    pending = await review.record_choice(whatsapp, f"rent an {resident.words[5]}", "t", "")
    approved = await review.record_choice(whatsapp, f"an {resident.words[5]} plot", "t", "")
    assert pending is not None and approved is not None
    await review.decide(approved.id, "out_of_scope", "editor.ed")

    # delivery states and a failed send, in bot/channels/delivery.py's documented layout
    await client.hset(
        layout.key("delivery", whatsapp),
        "SMabc" + tag,
        json.dumps({"status": "failed", "text": resident.words[3]}),
    )
    await client.xadd(
        layout.key("outbox", "failed"),
        {
            "conversation_id": whatsapp,
            "recipient": phone,
            "text": resident.words[3],
            "error": "63016",
        },
    )
    return resident


async def _everything(client: redis.asyncio.Redis, layout: Layout) -> dict[str, str]:
    """Every key of the namespace and the tracker store, with its whole value as text."""
    found = {}
    for prefix in (f"{layout.namespace}:", layout.tracker_prefix, layout.lock_prefix):
        async for name in client.scan_iter(match=f"{prefix}*", count=1000):
            kind = await client.type(name)
            value: Any
            if kind == "string":
                value = await client.get(name)
            elif kind == "hash":
                value = await client.hgetall(name)
            elif kind == "list":
                value = await client.lrange(name, 0, -1)
            elif kind == "set":
                value = sorted(await client.smembers(name))
            elif kind == "zset":
                value = await client.zrange(name, 0, -1, withscores=True)
            elif kind == "stream":
                value = await client.xrange(name)
            else:
                raise AssertionError(f"{name}: unexpected type {kind}")
            found[name] = json.dumps(value)
    return found


def _mentions(everything: dict[str, str], resident: Seeded) -> list[str]:
    return sorted(
        f"{name} ({needle})"
        for name, value in everything.items()
        for needle in resident.needles()
        if needle in name or needle in value
    )


async def _cli(*argv: str) -> int:
    """The CLI's main() in a thread: it runs its own event loop."""
    return await asyncio.to_thread(main, list(argv))


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(out, "PNG")
    return out.getvalue()


def _without_time(exported: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in exported.items() if k != "exported_at"}


async def test_export_then_erase_leaves_nothing_of_the_resident(
    async_redis: redis.asyncio.Redis, redis_url: str, layout: Layout, cleanup: None
) -> None:
    priya = await _seed(
        async_redis, redis_url, layout, name="Priya Shah", phone="+447700900111",
        uprn="100001", with_telegram=True,
    )  # fmt: skip
    tom = await _seed(
        async_redis, redis_url, layout, name="Tom Evans", phone="+447700900222",
        uprn="100002", with_telegram=False,
    )  # fmt: skip
    before = await _everything(async_redis, layout)
    assert _mentions(before, priya) and _mentions(before, tom)  # the scan can see them

    # found by her phone number in national format, by the email address she gave in the
    # handed-off case, or by the conversation id: her WhatsApp conversation and its case (the
    # Telegram chat is another conversation id; nothing links it to her number)
    found = await find(async_redis, layout, "07700 900111")
    assert sorted(found.conversations) == sorted(priya.conversations[:1])
    found = await find(async_redis, layout, priya.email)
    assert set(found.conversations) == {priya.conversations[0]}
    found = await find(async_redis, layout, priya.conversations[0])
    assert found.cases == priya.cases

    exported = await export(async_redis, layout, found)
    text = json.dumps(exported)
    for needle in (*priya.words, priya.message_ids[0], priya.references[0], priya.name):
        assert needle in text, needle
    assert tom.name not in text and tom.phone not in text
    (case,) = exported["handoff_cases"]
    assert [m["text"] for m in case["messages"]] == [priya.words[1]]
    assert [n["text"] for n in case["notes"]] == [priya.words[2]]
    assert case["report_question"] == f"can I put a {priya.words[4]} in the bin"
    assert sorted(c["text"] for c in exported["review_candidates"]) == [
        f"an {priya.words[5]} plot",
        f"rent an {priya.words[5]}",
    ]
    (report,) = exported["missed_bin_reports"]
    assert report["reference"] == priya.references[0]
    (whatsapp,) = exported["conversations"]
    assert whatsapp["tracker"]["events"][0]["text"].startswith("my bin")
    assert whatsapp["inbox_message_ids_remembered"] == priya.message_ids[:1]
    assert whatsapp["last_inbound_at"] == NOW.isoformat()
    assert whatsapp["days_active"] == ["2027-03-03"]
    assert set(whatsapp["stream_entries"]) == {"inbox", "outbox", "outbox:failed"}
    tom_before = _without_time(await export(async_redis, layout, await find(
        async_redis, layout, tom.phone
    )))  # fmt: skip

    # erase both of her conversations: by WhatsApp id, then the Telegram one by its id
    audit = AuditLog(async_redis, layout.namespace)
    done = await erase(async_redis, layout, found, audit, actor="dpo", request="DSR-0042")
    assert done.cases == 1 and done.missed_bin_reports == 1
    telegram = await find(async_redis, layout, priya.conversations[1])
    await erase(async_redis, layout, telegram, audit, actor="dpo", request="DSR-0042")

    after = await _everything(async_redis, layout)
    assert _mentions(after, priya) == []
    assert await leftovers(async_redis, layout, found) == []
    assert not (await find(async_redis, layout, priya.phone)).found
    # Tom is untouched
    tom_after = _without_time(await export(async_redis, layout, await find(
        async_redis, layout, tom.phone
    )))  # fmt: skip
    assert tom_after == tom_before
    assert await async_redis.hgetall(layout.key("bins", "missed", tom.references[0]))
    # the audit log says what was done, by whom, for which request, and nothing more
    entries = await audit.recent(limit=10)
    assert {(e.actor, e.action, e.object_id) for e in entries} == {
        ("dpo", "resident.erase", "DSR-0042")
    }
    assert sorted(e.detail["handoff_cases"] for e in entries) == [0, 1]


async def test_cli_export_and_erase(
    async_redis: redis.asyncio.Redis,
    redis_url: str,
    layout: Layout,
    cleanup: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    priya = await _seed(
        async_redis, redis_url, layout, name="Priya Shah", phone="+447700900333",
        uprn="100003", with_telegram=False,
    )  # fmt: skip
    endpoints = tmp_path / "endpoints.yml"
    prefix = layout.tracker_prefix.split(":")[0]
    endpoints.write_text(
        f"tracker_store:\n  key_prefix: {prefix}\nlock_store:\n  key_prefix: {prefix}\n"
    )
    common = [
        "--redis-url",
        redis_url,
        "--namespace",
        layout.namespace,
        "--endpoints",
        str(endpoints),
    ]
    out = tmp_path / "priya.json"

    assert await _cli(*common, "export", priya.phone, "--out", str(out)) == 0
    assert json.loads(out.read_text())["handoff_cases"][0]["case_id"] == priya.cases[0]
    assert out.stat().st_mode & 0o077 == 0

    # the reference goes into the audit log: not the resident's number
    assert await _cli(*common, "erase", priya.phone, "--request", f"DSR {priya.phone}") == 2
    assert "--request names the resident" in capsys.readouterr().err
    assert await _cli(*common, "erase", priya.phone, "--actor", "dpo") == 0
    printed = capsys.readouterr().out
    assert "nothing about the resident is left" in printed
    assert _mentions(await _everything(async_redis, layout), priya) == []

    assert await _cli(*common, "erase", priya.phone) == 0
    assert "Nothing held about '+447700900333'" in capsys.readouterr().out

    assert await _cli(*common, "sweep") == 0  # nothing is old enough yet
    assert capsys.readouterr().out == (
        "0 handoff cases, 0 failed messages, 0 conversations, 0 missed bin reports, "
        "0 audit entries, 0 report questions, 0 review candidates, 0 problem reports, "
        "0 report photos removed.\n"
    )


def test_cli_unknown_resident_is_nothing_held(redis_url: str, namespace: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bot.residents", "erase", "nobody@example.org"],
        env={**os.environ, "REDIS_URL": redis_url, "COUNCIL_NAMESPACE": namespace},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"Nothing held about 'nobody@example.org' in namespace '{namespace}'" in done.stdout


@pytest.mark.parametrize(
    "who", ["whatsapp:+441632960000:+447700900999", "07700 900999", "0123456789abcdef"]
)
async def test_unknown_conversation_phone_or_case_is_nothing_held(
    async_redis: redis.asyncio.Redis, layout: Layout, who: str
) -> None:
    assert not (await find(async_redis, layout, who)).found


def test_cli_unreachable_redis_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--redis-url", "redis://127.0.0.1:1/0", "export", "+447700900123"]) == 2
    assert "error:" in capsys.readouterr().err


def test_layout_follows_the_rasa_stores_in_endpoints_yml(tmp_path: Path) -> None:
    assert Layout.from_endpoints(ROOT / "endpoints.yml", "cr") == Layout("cr", "tracker:", "lock:")
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text("tracker_store:\n  key_prefix: council\n")
    assert Layout.from_endpoints(endpoints, "cr").tracker_prefix == "council:tracker:"
    endpoints.write_text("lock_store:\n  key_prefix: not-alnum\n")
    with pytest.raises(ConfigError) as info:
        Layout.from_endpoints(endpoints, "cr")
    assert (info.value.path, info.value.key) == (str(endpoints), "lock_store.key_prefix")


async def test_leftovers_reads_the_keys_of_an_untagged_namespace(
    async_redis: redis.asyncio.Redis, layout: Layout
) -> None:
    # production namespaces are plain ("cr") and the keys carry the hash tag ("{cr}:...")
    plain = Layout(f"test{uuid.uuid4().hex[:10]}", layout.tracker_prefix, layout.lock_prefix)
    left = plain.key("delivery", "sms:+441632960000:+447700900123")
    await async_redis.set(left, "undelivered")
    try:
        resident = await find(async_redis, plain, "sms:+441632960000:+447700900123")
        assert await leftovers(async_redis, plain, resident) == [left]
    finally:
        await async_redis.delete(left)


async def _seed_webchat(
    client: redis.asyncio.Redis, redis_url: str, layout: Layout, phone: str
) -> tuple[str, list[str]]:
    """A web chat resident who touched every store: their conversation id and needles.

    Events and a typing indicator (the SSE wake-up stream), an upload, a rate-limit counter,
    a number confirmed with a code, the inbox, Rasa's tracker, a handoff case, a problem report
    with a subscription to another request's updates, a review-queue candidate.
    """
    ns = layout.namespace
    profile = current_profile()
    assert profile.webchat is not None
    council = profile.webchat.council_id
    sender = uuid.uuid4().hex
    conversation = f"webchat:{council}:{sender}"
    word = uuid.uuid4().hex[:8].translate(str.maketrans("0123456789", "ghijklmnop"))
    words = [f"zebra{word}", f"quokka{word}", f"pothole{word}", f"allotment{word}"]
    log = EventLog(client, ns, keep_days=1)
    await log.append(sender, "message", {"role": "resident", "text": words[0]}, once_for="c1")
    await log.append(sender, "message", {"role": "bot", "text": words[1]})
    await log.typing(sender, {"role": "agent"})
    upload = await UploadStore(client, ns).save(sender, "image/png", _png(), WebChatLimits())
    assert (await RateLimiter(client, ns, "s").hit("messages", sender, 20, 60)).allowed
    link = PhoneLink(client, ns, "secret", log)
    await link.start(sender, "sms", phone, profile.webchat)
    [(_, sms)] = await client.xrange(layout.key("outbox"))
    code = re.search(r"\d{6}", sms["text"])
    assert code is not None and await link.confirm(sender, code.group(0), council)
    await client.delete(layout.key("outbox"))  # the outbox worker sent the code
    message_id = f"wc{uuid.uuid4().hex}"
    message = InboundMessage("webchat", council, sender, message_id, words[0], NOW.timestamp())
    await Inbox(client, ns).accept([message])
    store = RedisUrlTrackerStore(
        Domain.empty(), host=redis_url, key_prefix=layout.tracker_prefix.split(":")[0]
    )
    user = UserUttered(words[0], message_id=message_id, metadata={"account": council})
    await store.save(DialogueStateTracker.from_events(conversation, [user]))
    case_id = await HandoffQueue(client, ns, clock=lambda: NOW).open(
        HandoffRecord(
            conversation_id=conversation,
            channel="webchat",
            account=council,
            sender=sender,
            reason="asked_for_person",
            topic="human_agent",
            priority="P2",
            team=profile.routing.default,
            created_at=NOW.isoformat(),
            transcript=[{"role": "resident", "text": words[0], "at": NOW.isoformat()}],
        )
    )
    report = ProblemReport(
        report_id=f"r-{word}",
        conversation_id=conversation,
        channel="webchat",
        account=council,
        sender=sender,
        service_code="001",
        service_name="Pothole",
        description=f"a {words[2]} by the school",
        created_at=NOW.timestamp(),
        lat=52.2,
        long=-1.5,
    )
    await ReportOutbox(client, ns).enqueue(report)
    await subscribe(client, ns, f"SR-{word}", Subscriber.of(report, f"SR-{word}", 0))
    assert await ReviewQueue(client, ns).record_choice(conversation, words[3], "t", "")
    return conversation, [
        sender, conversation, phone.lstrip("+"), *words, upload,
        message_id, case_id, report.report_id,
    ]  # fmt: skip


async def test_a_web_chat_resident_found_by_number_leaves_nothing_in_any_key(
    async_redis: redis.asyncio.Redis, redis_url: str, layout: Layout, cleanup: None
) -> None:
    """Every key family a web chat conversation writes, scanned after erasing by phone."""
    conversation, needles = await _seed_webchat(async_redis, redis_url, layout, "+447700900444")
    _, others = await _seed_webchat(async_redis, redis_url, layout, "+447700900555")
    before = await _everything(async_redis, layout)
    for needle in needles:
        assert any(needle in n or needle in v for n, v in before.items()), needle

    found = await find(async_redis, layout, "07700 900444")
    assert found.conversations == [conversation] and len(found.cases) == 1
    await erase(async_redis, layout, found, AuditLog(async_redis, layout.namespace))

    after = await _everything(async_redis, layout)
    left = sorted(
        f"{name} ({needle})"
        for name, value in after.items()
        for needle in needles
        if needle in name or needle in value
    )
    assert left == []
    assert await leftovers(async_redis, layout, found) == []
    # the other resident's conversation is all there
    for needle in others:
        assert any(needle in n or needle in v for n, v in after.items()), needle

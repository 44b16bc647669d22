"""The web chat widget in Chromium (issue 14): a resident on the council's own page.

The fictional council's site (``bot.webchat.sample``, strict CSP) is served on one loopback
origin and the edge with its ``/webchat`` routes on another, so the widget crosses origins as
it will in production. Behind the edge run the real inbox and outbox workers; the assistant is
a small fake (:class:`FakeAssistant`) that answers like the real one's forms, asks for a photo,
asks where a pothole is in the report form's own words (responses/reports.yml, the web chat's
variation) and places the pin with the demo gazetteer, and hands over to a person by opening a
real handoff case, which an agent answers from the real console in a second browser context.
The one test with the real Rasa assistant is marked e2e.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time
from typing import Any, Literal

import httpx
import pytest
import redis.asyncio
from PIL import Image
from playwright.async_api import Browser, FilePayload, Geolocation, Locator, Page, expect

from bot.channels.base import (
    Button,
    ChannelAdapter,
    InboundMessage,
    OutboundMessage,
    Parsed,
    SendResult,
    conversation_id,
)
from bot.channels.inbox import Inbox, InboxWorker
from bot.channels.outbox import OutboxWorker
from bot.handoff.hours import OpeningHours
from bot.handoff.queue import HandoffQueue
from bot.handoff.record import HandoffRecord
from bot.profile import current as current_profile
from bot.reports.demo_places import GAZETTEER_FILE
from bot.reports.gazetteer import Gazetteer, Place, Status, place_pin, place_text
from bot.testing import console as console_fixtures
from bot.testing.accessibility import axe_violations, describe, horizontal_overflow
from bot.testing.assistant import Assistant
from bot.testing.browser import LocalServer, serve
from bot.testing.edge import serving
from bot.testing.responses import rendered_messages
from bot.web.accounts import AccountStore
from bot.webchat.adapter import UPLOAD_PAYLOAD, WebChatAdapter
from bot.webchat.app import WebChat
from bot.webchat.config import WebChatConfig, WebChatLimits
from bot.webchat.sample import sample_site
from bot.webchat.status import CHANNEL
from bot.webchat.status import typing as agent_typing

pytestmark = pytest.mark.browser

# the agent console's fixtures (tests/webchat/conftest.py has the edge's)
browser = console_fixtures.browser
page = console_fixtures.page
clock = console_fixtures.clock
console_settings = console_fixtures.console_settings
console_app = console_fixtures.console_app
console_server = console_fixtures.console_server
make_user = console_fixtures.make_user

COUNCIL = "ashvale"
NAME = "Ashvale Council"
GREETING = "Hello! Ask me about bins, council tax or anything else."
MAX_UPLOAD = 50_000
MONDAY_NOON = datetime(2026, 11, 30, 12, 0, tzinfo=UTC).timestamp()  # the contact centre is open
SATURDAY_NIGHT = datetime(2026, 11, 28, 20, 0, tzinfo=UTC).timestamp()  # closed until Monday 9am
SECRET = "s" * 48

# 200% zoom of a 1280 px window lays the page out in 640 CSS pixels at two device pixels each.
VIEWS: dict[str, dict[str, Any]] = {
    "320px": {"viewport": {"width": 320, "height": 640}},
    "zoom200": {"viewport": {"width": 640, "height": 400}, "device_scale_factor": 2},
    "1280px": {"viewport": {"width": 1280, "height": 800}},
}


# -- the assistant behind the edge (fake) and the phone numbers' provider (recording) ----------


PLACES = Gazetteer.load(GAZETTEER_FILE)
_LIBRARY = PLACES.place("Ashvale Library").place
assert _LIBRARY is not None
LIBRARY: Place = _LIBRARY


def said(response: str, **values: Any) -> OutboundMessage:
    """A response of responses/*.yml as the Rasa server renders it for the web chat."""
    [message] = rendered_messages([{"response": response, **values}], CHANNEL)
    buttons = tuple(Button(b["title"], b["payload"]) for b in message["buttons"])
    return OutboundMessage(str(message["text"]), buttons)


@dataclass
class FakeAssistant:
    """Answers like the assistant's forms: bin day, a missed bin with a photo, a pothole report
    (where, what, the summary), a handoff. Keeps what it was sent (``received``)."""

    queue: HandoffQueue
    asking: dict[str, str] = field(default_factory=dict)
    received: list[InboundMessage] = field(default_factory=list)
    where: dict[str, str] = field(default_factory=dict)

    async def __call__(self, message: InboundMessage) -> Sequence[OutboundMessage]:
        self.received.append(message)
        cid = conversation_id(message.channel, message.account, message.sender)
        if await self.queue.case_for(cid):  # with a person: the bot stays quiet
            await self.queue.append_message(cid, "resident", message.text)
            return []
        text = message.text.lower()
        step = self.asking.pop(cid, "")
        if step == "report_location":
            return self.place(cid, message)
        if step == "report_description":
            return [
                said(
                    "utter_ask_report_confirm",
                    service_name="Pothole",
                    where=self.where.pop(cid),
                    details=message.text,
                    photo="no",
                    contact="no",
                )
            ]
        if "pothole" in text:
            self.asking[cid] = "report_location"
            return [said("utter_ask_report_location")]
        if message.attachments:
            return [OutboundMessage("Thanks for the photo. Your report is MB-2026-000123.")]
        if step == "postcode":
            return [
                OutboundMessage(
                    "Which address is yours?",
                    buttons=(
                        Button("1 High Street", "/address{1}"),
                        Button("2 High Street", "/address{2}"),
                    ),
                )
            ]
        if message.quick_reply_payload and message.quick_reply_payload.startswith("/address"):
            return [OutboundMessage("Your next collections: black bin Tuesday 1 December.")]
        if "bin day" in text:
            self.asking[cid] = "postcode"
            return [OutboundMessage("What's your postcode? For example AV1 2BX.")]
        if "missed" in text:
            return [
                OutboundMessage(
                    "Sorry about that. Please add a photo of the bin.",
                    buttons=(Button("Add a photo", UPLOAD_PAYLOAD),),
                )
            ]
        if "person" in text:
            await self.queue.open(handoff_record(cid, message))
            return [OutboundMessage("I've asked a member of the team to reply here.")]
        return [
            OutboundMessage(f"You asked about “{message.text}”. See https://www.ashvale.gov.uk/a-z")
        ]

    def place(self, cid: str, message: InboundMessage) -> list[OutboundMessage]:
        """The report form's placing of a pin or words (gazetteer, council's area)."""
        reports = current_profile().reports
        area = reports.area if reports else None
        if message.location is not None:
            pin = message.location
            placed = place_pin(PLACES, area, pin.latitude, pin.longitude)
        else:
            placed = place_text(PLACES, area, message.text)
        if placed.status is not Status.FOUND or placed.place is None:
            self.asking[cid] = "report_location"
            return [said("utter_report_location_unknown"), said("utter_ask_report_location")]
        self.where[cid] = placed.place.address_string
        self.asking[cid] = "report_description"
        return [said("utter_ask_report_description")]


def handoff_record(cid: str, message: InboundMessage) -> HandoffRecord:
    at = datetime.now(UTC).isoformat()
    return HandoffRecord(
        conversation_id=cid,
        channel=CHANNEL,
        account=message.account,
        sender=message.sender,
        display_name="Web chat resident",
        reason="asked_for_person",
        topic="human_agent",
        priority="P2",
        team="customer_services",
        created_at=at,
        transcript=[{"role": "resident", "text": message.text, "at": at}],
        intents=[{"name": "human_agent", "confidence": 0.95}],
        entities={},
        window=None,
    )


class PhoneRecorder(ChannelAdapter):
    """Stands for Twilio: keeps what would be texted (the continue-on-phone codes and copies)."""

    channel = "sms"
    channels = ("sms", "whatsapp")

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []
        self.changed = asyncio.Event()

    async def texts(self, pattern: str, count: int = 1) -> list[str]:
        """The first ``count`` texts sent matching ``pattern``, once they are (15 s at most)."""
        async with asyncio.timeout(15):
            while True:
                self.changed.clear()
                found = [text for _, _, text in self.sent if re.search(pattern, text)]
                if len(found) >= count:
                    return found[:count]
                await self.changed.wait()

    def verify(self, headers: Mapping[str, str], raw_body: bytes, url: str) -> None:
        raise NotImplementedError

    def read(self, headers: Mapping[str, str], raw_body: bytes) -> Parsed:
        raise NotImplementedError

    async def send(
        self, account: str, recipient: str, message: OutboundMessage, *, channel: str = ""
    ) -> SendResult:
        self.sent.append((channel or self.channel, recipient, message.text))
        self.changed.set()
        return SendResult("sent", provider_id=f"SM{len(self.sent)}")


# -- the edge, the council's site and the workers ---------------------------------------------


@dataclass
class ChatSite:
    """The running edge (``edge``), the council's site and what stands behind them."""

    edge: str
    site: LocalServer
    webchat: WebChat
    phones: PhoneRecorder
    redis: redis.asyncio.Redis
    namespace: str
    assistant: FakeAssistant

    def url(self, path: str = "/") -> str:
        """A page of the council's site."""
        return self.site.make_url(path)

    async def conversation(self, page: Page) -> str:
        """The web chat conversation id (the token's) of the widget on ``page``."""
        stored = await page.evaluate(f"sessionStorage.getItem('council-responder:{COUNCIL}')")
        token = json.loads(stored)["token"]
        return self.webchat.signer.verify(token).conversation


def webchat_config() -> WebChatConfig:
    return WebChatConfig(
        council_id=COUNCIL,
        name=NAME,
        greeting=GREETING,
        primary="#0b3b2e",
        on_primary="#ffffff",
        continue_channels=("sms", "whatsapp"),
        continue_from="+447700900000",
        limits=WebChatLimits(max_upload_bytes=MAX_UPLOAD, address_requests_per_minute=10_000),
    )


@asynccontextmanager
async def edge_and_site(webchat: WebChat) -> AsyncIterator[tuple[str, LocalServer]]:
    """The edge serving ``webchat``, and the council's site embedding it, on two origins."""
    inbox = webchat.inbox
    async with serving([], inbox.redis, inbox.namespace, parts=[webchat]) as edge:
        await webchat.fanout.ready.wait()
        async with serve(sample_site(edge, webchat.config.council_id)) as site:
            # the site's origin is known once it listens: the profile allows it
            webchat.config = replace(webchat.config, allowed_origins=(site.base_url,))
            yield edge, site


@asynccontextmanager
async def chat_site(
    client: redis.asyncio.Redis, namespace: str, now: float
) -> AsyncIterator[ChatSite]:
    config = webchat_config()
    hours = OpeningHours(open_at=time(9), close_at=time(17))
    inbox = Inbox(client, namespace)
    webchat = WebChat(config, SECRET, inbox, hours, keep_days=1, clock=lambda: now)
    phones = PhoneRecorder()
    adapters = {
        CHANNEL: WebChatAdapter(client, namespace, config=config, keep_days=1),
        "sms": phones,
        "whatsapp": phones,
    }
    assistant = FakeAssistant(HandoffQueue(client, namespace))
    reader = InboxWorker(client, assistant, namespace, consumer="webchat-test-in", block_ms=50)
    sender = OutboxWorker(client, adapters, namespace, consumer="webchat-test-out", block_ms=50)
    stop = asyncio.Event()
    async with edge_and_site(webchat) as (edge, site):
        workers = [asyncio.create_task(reader.run(stop)), asyncio.create_task(sender.run(stop))]
        try:
            yield ChatSite(edge, site, webchat, phones, client, namespace, assistant)
        finally:
            stop.set()
            await asyncio.gather(*workers)


@pytest.fixture
async def site(async_redis: redis.asyncio.Redis, namespace: str) -> AsyncIterator[ChatSite]:
    async with chat_site(async_redis, namespace, MONDAY_NOON) as running:
        yield running


@pytest.fixture
def console_sections() -> tuple[str, ...]:
    return ("bot.web.agent",)


# -- what the resident sees and hears ----------------------------------------------------------

RECORD_ANNOUNCEMENTS = """() => {
  window.__said = [];
  const live = '[aria-live], [role=status], [role=alert], [role=log]';
  new MutationObserver(records => {
    const regions = new Set();
    for (const r of records) {
      const node = r.target.nodeType === 1 ? r.target : r.target.parentElement;
      const region = node && node.closest(live);
      if (region && region.closest('.crw')) regions.add(region);
    }
    for (const region of regions) {
      const text = region.textContent.trim();
      const kind = region.getAttribute('aria-live') || region.getAttribute('role');
      if (text) window.__said.push([kind, text]);
    }
  }).observe(document.querySelector('.crw'), {subtree: true, childList: true, characterData: true});
}"""


class Widget:
    """The widget on a page, as a resident uses it."""

    def __init__(self, page: Page, name: str = NAME) -> None:
        self.page = page
        self.launcher = page.get_by_role("button", name=re.compile("^Chat with us"))
        self.panel = page.get_by_role("dialog", name=f"Chat with {name}")
        self.input = page.get_by_label("Your message")
        self.status = self.panel.get_by_role("status").first
        self.messages = page.locator(".crw-msg .crw-text")

    def said(self, text: str) -> Locator:
        """A message in the log (not the live region's copy)."""
        return self.page.locator(".crw-msg .crw-text", has_text=text)

    async def send(self, text: str) -> None:
        await self.input.fill(text)
        await self.input.press("Enter")
        await expect(self.said(text).last).to_be_visible()

    async def texts(self) -> list[str]:
        return await self.messages.all_inner_texts()

    async def announcements(self) -> list[list[str]]:
        said: list[list[str]] = await self.page.evaluate("window.__said")
        return said

    async def record_announcements(self) -> None:
        await self.page.evaluate(RECORD_ANNOUNCEMENTS)


async def clean(page: Page, state: str) -> None:
    # the panel's opening fade would be measured half-transparent: check it once it has ended
    await page.evaluate("Promise.all(document.getAnimations().map(a => a.finished))")
    violations = await axe_violations(page)
    assert not violations, f"{state}:\n{describe(violations)}"


def watch(page: Page) -> list[str]:
    """Script errors and the widget's CSP violations (axe's own evaluation has no URL)."""
    problems: list[str] = []
    page.on(
        "console",
        lambda m: (
            problems.append(m.text)
            if "Content Security Policy" in m.text and m.location.get("url")
            else None
        ),
    )
    page.on("pageerror", lambda error: problems.append(str(error)))
    return problems


async def tab_to(page: Page, target: Locator, limit: int = 30) -> None:
    """Press Tab until ``target`` has the focus (keyboard only)."""
    for _ in range(limit):
        await page.keyboard.press("Tab")
        if await target.evaluate("e => e === document.activeElement"):
            return
    raise AssertionError("Tab never reached the element")


def png(width: int, height: int = 40) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


# -- tests -------------------------------------------------------------------------------------


async def test_keyboard_only_answer_bin_day_form_buttons_and_back_to_the_launcher(
    site: ChatSite, page: Page
) -> None:
    problems = watch(page)
    widget = Widget(page)
    await page.goto(site.url("/"))
    await expect(widget.launcher).to_be_visible()
    await expect(widget.panel).to_be_hidden()
    await clean(page, "closed")
    # The council's colour reached the launcher through the strict CSP (no style attribute).
    colour = await widget.launcher.evaluate("e => getComputedStyle(e).backgroundColor")
    assert colour == "rgb(11, 59, 46)"
    assert await page.locator(".crw [style]").count() == 0

    await tab_to(page, widget.launcher)
    await page.keyboard.press("Enter")
    await expect(widget.panel).to_be_visible()
    await expect(widget.input).to_be_focused()
    await expect(widget.launcher).to_have_attribute("aria-expanded", "true")
    await expect(widget.said(GREETING)).to_be_visible()
    await expect(widget.status).to_have_text(f"You're chatting with {NAME}'s automated assistant.")
    await clean(page, "open")
    await widget.record_announcements()

    await page.keyboard.type("can I recycle pizza boxes")
    await page.keyboard.press("Enter")
    answer = "You asked about “can I recycle pizza boxes”. See https://www.ashvale.gov.uk/a-z"
    await expect(widget.said(answer)).to_be_visible()
    link = widget.said(answer).get_by_role("link", name="https://www.ashvale.gov.uk/a-z")
    await expect(link).to_have_attribute("href", "https://www.ashvale.gov.uk/a-z")
    await clean(page, "answered")

    await page.keyboard.type("when is my bin day?")
    await page.keyboard.press("Enter")
    await expect(widget.said("What's your postcode?")).to_be_visible()
    await page.keyboard.type("AV1 2BX")
    await page.keyboard.press("Enter")
    choice = widget.panel.get_by_role("button", name="2 High Street")
    await expect(choice).to_be_visible()
    await expect(widget.panel.get_by_role("group", name="Which address is yours?")).to_be_visible()
    await clean(page, "buttons shown")
    await tab_to(page, choice)
    await page.keyboard.press("Enter")
    await expect(
        widget.said("Your next collections: black bin Tuesday 1 December.")
    ).to_be_visible()
    await expect(choice).to_have_count(0)  # the choice was made: its buttons are gone
    await expect(widget.input).to_be_focused()

    assert await widget.texts() == [
        GREETING,
        "can I recycle pizza boxes",
        answer,
        "when is my bin day?",
        "What's your postcode? For example AV1 2BX.",
        "AV1 2BX",
        "Which address is yours?",
        "2 High Street",  # the button's title, echoed as the resident's message
        "Your next collections: black bin Tuesday 1 December.",
    ]
    # One polite announcement per new message, of that message alone; the log itself is silent.
    announcer = page.locator(".crw [aria-live=polite]")
    await expect(announcer).to_have_text(
        f"{NAME}: Your next collections: black bin Tuesday 1 December."
    )
    said = [text for _, text in await widget.announcements() if not text.startswith("You're")]
    assert said == [
        f"{NAME}: {answer}",
        f"{NAME}: What's your postcode? For example AV1 2BX.",
        f"{NAME}: Which address is yours?",
        f"{NAME}: Your next collections: black bin Tuesday 1 December.",
    ]
    assert {kind for kind, _ in await widget.announcements()} <= {"polite", "status"}
    assert await page.locator(".crw-messages").evaluate(
        "e => e.closest('[aria-live], [role=log], [role=status], [role=alert]') === null"
    )

    await page.keyboard.press("Escape")
    await expect(widget.panel).to_be_hidden()
    await expect(widget.launcher).to_be_focused()
    await expect(widget.launcher).to_have_attribute("aria-expanded", "false")
    await page.keyboard.press("Enter")
    await expect(widget.input).to_be_focused()
    await page.get_by_role("button", name="Close chat").click()
    await expect(widget.launcher).to_be_focused()
    # Non-modal: with the panel open, Tab goes on past it into the page (the browser's chrome
    # and round to the skip link), never held inside.
    await page.keyboard.press("Enter")
    await tab_to(page, page.get_by_role("link", name="Skip to main content"), limit=40)
    assert problems == []


async def test_a_photo_is_asked_for_checked_in_the_browser_and_sent(
    site: ChatSite, page: Page
) -> None:
    problems = watch(page)
    widget = Widget(page)
    await page.goto(site.url("/bins"))
    await widget.launcher.click()
    await widget.send("my bin was missed")
    await expect(widget.said("Please add a photo of the bin.")).to_be_visible()
    picker = widget.panel.get_by_label("Add a photo")
    await expect(picker).to_have_attribute("accept", "image/jpeg,image/png,image/webp,image/gif")
    await expect(widget.panel.get_by_text("JPEG, PNG, WEBP, GIF, up to 49 KB.")).to_be_visible()
    await clean(page, "upload asked for")

    send = widget.panel.get_by_role("button", name="Send photo")
    await picker.set_input_files(
        files=[FilePayload(name="notes.txt", mimeType="text/plain", buffer=b"hi")]
    )
    await send.click()
    await expect(
        widget.panel.get_by_text("That file can't be sent. Choose a photo")
    ).to_be_visible()
    await expect(picker).to_be_focused()
    await expect(picker).to_have_attribute("aria-invalid", "true")
    big = png(1200, 1200) + b"\0" * MAX_UPLOAD
    await picker.set_input_files(
        files=[FilePayload(name="big.png", mimeType="image/png", buffer=big)]
    )
    await send.click()
    await expect(
        widget.panel.get_by_text("That photo is too big. Choose one under 49 KB.")
    ).to_be_visible()
    await clean(page, "upload refused")

    await picker.set_input_files(
        files=[FilePayload(name="bin.png", mimeType="image/png", buffer=png(60))]
    )
    await send.click()
    await expect(
        widget.said("Thanks for the photo. Your report is MB-2026-000123.")
    ).to_be_visible()
    await expect(picker).to_have_count(0)
    assert (await widget.texts())[-2:] == [
        "[photo]",
        "Thanks for the photo. Your report is MB-2026-000123.",
    ]
    assert problems == []


async def test_a_handoff_answered_from_the_agent_console(
    site: ChatSite, page: Page, browser: Browser, console_server: LocalServer, make_user: Any
) -> None:
    problems = watch(page)
    widget = Widget(page)
    await page.goto(site.url("/"))
    await widget.launcher.click()
    await widget.send("I want to talk to a person")
    await expect(widget.said("I've asked a member of the team to reply here.")).to_be_visible()
    await expect(widget.status).to_have_text("Waiting for a member of the team to reply.")
    conversation = await site.conversation(page)
    cid = conversation_id(CHANNEL, COUNCIL, conversation)
    case_id = await HandoffQueue(site.redis, site.namespace).case_for(cid)
    assert case_id

    # The agent, in a browser of their own, claims the case and answers.
    user, password = await make_user("agent", teams=("customer_services",), username="sam.jones")
    agent_context = await browser.new_context()
    agent = await agent_context.new_page()
    case_url = console_server.make_url(f"/agent/cases/{case_id}")
    await agent.goto(case_url)
    await agent.get_by_label("Username").fill(user.username)
    await agent.get_by_label("Password").fill(password)
    await agent.get_by_role("button", name="Sign in").click()
    await agent.wait_for_url(case_url)
    await agent.get_by_role("button", name="Claim").click()
    # without a display name the resident sees "an adviser", never part of the login name
    await expect(widget.status).to_have_text("You're now talking to an adviser.")
    await agent_typing(site.redis, site.namespace, cid, "sam.jones")
    await expect(widget.panel.get_by_text("An adviser is typing…")).to_be_visible()
    await AccountStore(site.redis, site.namespace).set_display_name("sam.jones", "Sam")
    await agent_typing(site.redis, site.namespace, cid, "sam.jones")
    await expect(widget.panel.get_by_text("Sam is typing…")).to_be_visible()
    # the resident closes the panel meanwhile: the launcher says a message came
    await widget.panel.get_by_role("button", name="Close chat").click()
    await agent.get_by_label("Reply", exact=True).fill("Hello, I'm Sam. I can help with that.")
    await agent.get_by_role("button", name=re.compile("^Send")).click()
    await expect(page.get_by_role("button", name="Chat with us (1 new)")).to_be_visible()
    await widget.launcher.click()
    await expect(widget.launcher).to_have_accessible_name("Chat with us")

    await expect(widget.status).to_have_text("You're now talking to Sam.")
    reply = widget.said("Hello, I'm Sam. I can help with that.")
    await expect(reply).to_be_visible()
    await expect(page.locator(".crw-from-agent .crw-who")).to_have_text("Sam")
    await expect(widget.panel.get_by_text("Sam is typing…")).to_be_hidden()
    await clean(page, "handed off")

    # The resident answers; the agent sees it on the case.
    await widget.send("Thanks Sam, it's about my garden waste")
    transcript = agent.locator("#transcript")
    await expect(transcript).to_contain_text("it's about my garden waste", timeout=15_000)
    await agent_context.close()
    assert problems == []


async def test_a_reload_or_another_page_continues_the_conversation_once(
    site: ChatSite, page: Page
) -> None:
    widget = Widget(page)
    await page.goto(site.url("/"))
    await widget.launcher.click()
    await widget.send("hello")
    await expect(widget.said("You asked about “hello”.")).to_be_visible()
    await widget.send("when is my bin day?")
    await expect(widget.said("What's your postcode?")).to_be_visible()
    before = await widget.texts()

    await page.reload()
    await expect(widget.said("What's your postcode?")).to_be_visible()  # the panel stays open
    await widget.record_announcements()
    await widget.send("AV1 2BX")  # the form goes on where it was
    await expect(widget.panel.get_by_role("button", name="1 High Street")).to_be_visible()
    after = await widget.texts()
    assert after == [*before, "AV1 2BX", "Which address is yours?"]
    # the history was shown, not announced again: only the new message was
    await expect(page.locator(".crw [aria-live=polite]")).to_have_text(
        f"{NAME}: Which address is yours?"
    )
    said = [text for _, text in await widget.announcements() if not text.startswith("You're")]
    assert said == [f"{NAME}: Which address is yours?"]

    await page.get_by_role("link", name="Bins and recycling").first.click()
    await page.wait_for_url(site.url("/bins"))
    await expect(widget.said("Which address is yours?")).to_be_visible()
    await widget.panel.get_by_role("button", name="1 High Street").click()
    await expect(widget.said("Your next collections")).to_be_visible()
    assert await widget.texts() == [
        *after,
        "1 High Street",
        "Your next collections: black bin Tuesday 1 December.",
    ]


async def test_out_of_hours_the_reply_can_continue_by_text_message(
    async_redis: redis.asyncio.Redis, namespace: str, page: Page
) -> None:
    problems = watch(page)
    widget = Widget(page)
    async with chat_site(async_redis, namespace, SATURDAY_NIGHT) as site:
        await page.goto(site.url("/"))
        await widget.launcher.click()
        notice = widget.panel.get_by_text("Our team is away now.")
        await expect(notice).to_have_text(
            "Our team is away now. A person will reply from Monday 30 November at 9:00."
            " The assistant can still help."
        )
        await clean(page, "out of hours")
        await widget.send("hello")  # the conversation the phone continues
        await widget.panel.get_by_role("button", name="Get the reply on your phone").click()
        phone = widget.panel.get_by_label("Mobile number")
        await expect(phone).to_be_focused()
        await expect(widget.panel.get_by_label("WhatsApp")).to_be_visible()
        await widget.panel.get_by_label("Text message (SMS)").check()
        await phone.fill("0770 090")
        await widget.panel.get_by_role("button", name="Send code").click()
        await expect(
            widget.panel.get_by_text("Enter a UK mobile number, like 07700 900123.")
        ).to_be_visible()
        await expect(phone).to_have_attribute("aria-invalid", "true")
        await clean(page, "phone refused")
        await phone.fill("07700 900123")
        await widget.panel.get_by_role("button", name="Send code").click()
        code_box = widget.panel.get_by_label("6-digit code")
        await expect(code_box).to_be_focused()
        await expect(widget.panel.get_by_text("We sent it to 07700 900123.")).to_be_visible()
        [text] = await site.phones.texts(r"\b\d{6}\b")
        assert site.phones.sent[0][1] == "+447700900123"
        code = re.findall(r"\b\d{6}\b", text)[0]

        confirm = widget.panel.get_by_role("button", name="Confirm")
        wrong = "000000" if code != "000000" else "111111"
        await code_box.fill(wrong)
        await confirm.click()
        await expect(widget.panel.get_by_text("That code is not right.")).to_be_visible()
        await clean(page, "code refused")
        # tried too often: the code is spent, the resident asks for a new one
        expired = widget.panel.get_by_text("That code can't be used any more. Ask for a new code.")
        for _ in range(6):
            async with page.expect_response(re.compile("/webchat/continue/confirm$")) as answer:
                await confirm.click()
            if (await answer.value).status == 429:
                break
        await expect(expired).to_be_visible()
        await expect(phone).to_be_focused()
        await phone.fill("07700 900123")
        await widget.panel.get_by_role("button", name="Send code").click()
        [_, text] = await site.phones.texts(r"\b\d{6}\b", 2)
        await code_box.fill(re.findall(r"\b\d{6}\b", text)[0])
        await confirm.click()
        await expect(
            widget.panel.get_by_text("Replies will also be sent to your phone.")
        ).to_be_visible()
        await clean(page, "continuing on the phone")

        # the next reply reaches the phone too
        await widget.send("hello again")
        await expect(widget.said("You asked about “hello again”.")).to_be_visible()
        await site.phones.texts("hello again")
    assert problems == []


async def test_ending_the_chat_shows_the_transcript_to_copy_and_download(
    site: ChatSite, browser: Browser
) -> None:
    context = await browser.new_context(permissions=["clipboard-read", "clipboard-write"])
    page = await context.new_page()
    problems = watch(page)
    widget = Widget(page)
    await page.goto(site.url("/"))
    await widget.launcher.click()
    await widget.send("hello")
    await expect(widget.said("You asked about “hello”.")).to_be_visible()
    stored = json.loads(
        await page.evaluate(f"sessionStorage.getItem('council-responder:{COUNCIL}')")
    )
    assert await page.evaluate("document.cookie") == ""

    await widget.panel.get_by_role("button", name="End chat").click()
    copy = widget.panel.get_by_role("button", name="Copy transcript")
    await expect(copy).to_be_focused()
    await expect(widget.status).to_have_text("This chat has ended.")
    transcript = await widget.panel.get_by_label("Your chat").input_value()
    lines = transcript.splitlines()
    assert lines[0].startswith(f"Chat with {NAME}, ")
    assert [re.sub(r"^\[\d\d:\d\d\] ", "", line) for line in lines[2:]] == [
        "You: hello",
        f"{NAME}: You asked about “hello”. See https://www.ashvale.gov.uk/a-z",
    ]
    await clean(page, "ended")

    await copy.click()
    await expect(widget.panel.get_by_text("Transcript copied.")).to_be_visible()
    assert await page.evaluate("navigator.clipboard.readText()") == transcript
    async with page.expect_download() as download_info:
        await widget.panel.get_by_role("button", name="Download transcript").click()
    download = await download_info.value
    assert re.fullmatch(r"chat-ashvale-\d{4}-\d\d-\d\d\.txt", download.suggested_filename)
    assert (await download.path()).read_text(encoding="utf-8") == transcript

    # the token is forgotten here and refused by the edge
    assert await page.evaluate(f"sessionStorage.getItem('council-responder:{COUNCIL}')") is None
    async with httpx.AsyncClient(base_url=site.edge) as http:
        answer = await http.post(
            "/webchat/messages",
            json={"client_id": "0b5f3c1e-aaaa-4bbb-8ccc-123456789abc", "text": "hi"},
            headers={"Authorization": f"Bearer {stored['token']}", "Origin": site.site.base_url},
        )
    assert answer.status_code == 401

    await widget.panel.get_by_role("button", name="Start a new chat").click()
    await expect(widget.input).to_be_focused()
    assert await widget.texts() == [GREETING]
    await context.close()
    assert problems == []


async def test_offline_and_a_failed_message_say_so_and_recover(
    site: ChatSite, browser: Browser
) -> None:
    context = await browser.new_context()
    page = await context.new_page()
    streams: list[str | None] = []  # each event stream's Last-Event-ID
    page.on(
        "request",
        lambda r: (
            streams.append(r.headers.get("last-event-id"))
            if r.url.endswith("/webchat/events")
            else None
        ),
    )
    widget = Widget(page)
    await page.goto(site.url("/"))
    await widget.launcher.click()
    await widget.send("hello")
    await expect(widget.said("You asked about “hello”.")).to_be_visible()
    # too long: said at once, nothing cut off or lost
    await widget.input.fill("x" * 1001)
    await widget.input.press("Enter")
    await expect(widget.panel.get_by_role("alert")).to_have_text(
        "Your message is too long: at most 1000 characters."
    )
    assert await widget.input.input_value() == "x" * 1001
    await widget.input.fill("")

    await context.set_offline(True)
    await expect(widget.status).to_contain_text("You're offline.")
    await expect(widget.status.get_by_role("button", name="Try again")).to_be_visible()
    await clean(page, "offline")

    await widget.input.fill("are you there?")
    await widget.input.press("Enter")
    failed = page.locator(".crw-from-resident", has_text="are you there?")
    await expect(failed).to_contain_text("Not sent.")
    alert = widget.panel.get_by_role("alert")
    await expect(alert).to_contain_text("You're offline.")
    await clean(page, "error")

    await context.set_offline(False)
    await alert.get_by_role("button", name="Try again").click()
    await expect(widget.said("You asked about “are you there?”.")).to_be_visible()
    await expect(failed).not_to_contain_text("Not sent.")
    await expect(widget.status).to_have_text(f"You're chatting with {NAME}'s automated assistant.")
    texts = await widget.texts()
    assert texts.count("are you there?") == 1 and texts.count("hello") == 1
    # the first stream replayed everything; the one after the outage asked only for what's new
    assert streams[0] is None and re.fullmatch(r"\d+-\d+", streams[-1] or ""), streams
    await context.close()


@pytest.mark.parametrize("view", list(VIEWS))
async def test_the_panel_reflows_at_320px_and_200_percent_zoom(
    view: str, site: ChatSite, browser: Browser
) -> None:
    settings = VIEWS[view]
    width = settings["viewport"]["width"]
    context = await browser.new_context(**settings)
    page = await context.new_page()
    widget = Widget(page)
    await page.goto(site.url("/bins"))
    assert await horizontal_overflow(page) == 0
    await widget.launcher.click()
    await widget.send("when is my bin day?")
    await widget.send("AV1 2BX")
    buttons = widget.panel.get_by_role("button", name=re.compile("High Street"))
    await expect(buttons).to_have_count(2)
    assert await horizontal_overflow(page) == 0
    controls = [
        widget.input,
        widget.panel.get_by_role("button", name="Send", exact=True),
        widget.panel.get_by_role("button", name="End chat"),
        widget.panel.get_by_role("button", name="Close chat"),
        buttons.first,
        buttons.last,
    ]
    for control in controls:
        await control.scroll_into_view_if_needed()
        await expect(control).to_be_visible()
        box = await control.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, box
    panel = await widget.panel.bounding_box()
    assert panel is not None and panel["width"] <= width
    await clean(page, f"buttons shown at {view}")
    # a photo asked for, below the messages: still reachable (scrolling up and down only)
    await widget.send("my bin was missed")
    for control in (widget.panel.get_by_label("Add a photo"), widget.input):
        await control.scroll_into_view_if_needed()
        await expect(control).to_be_in_viewport()
    send_photo = widget.panel.get_by_role("button", name="Send photo")
    await send_photo.scroll_into_view_if_needed()
    await expect(send_photo).to_be_in_viewport()
    assert await horizontal_overflow(page) == 0
    await clean(page, f"photo asked for at {view}")
    # asked where a problem is: the location button fits too, asking and refused (no
    # permission in this context)
    await widget.send("report a pothole")
    share = widget.panel.get_by_role("button", name="Share my location")
    await share.scroll_into_view_if_needed()
    await expect(share).to_be_in_viewport()
    box = await share.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, box
    assert await horizontal_overflow(page) == 0
    await clean(page, f"asking for location at {view}")
    await share.click()
    await expect(widget.said("Your browser didn't let the chat use your location.")).to_be_visible()
    assert await horizontal_overflow(page) == 0
    await clean(page, f"location denied at {view}")
    if width < 700:  # narrow: the panel fills the window
        assert panel["width"] == width
        # and makes way when the keyboard leaves it for the page it would hide
        await widget.panel.get_by_role("button", name="End chat").focus()
        await page.keyboard.press("Shift+Tab")
        await expect(widget.panel).to_be_hidden()
        focused = page.locator(":focus")
        await expect(focused).to_be_visible()
        assert await focused.evaluate("e => !e.closest('.crw')")
        await widget.launcher.click()
        await expect(widget.said("Please add a photo of the bin.")).to_be_visible()
    await context.close()


async def test_movement_only_without_a_reduced_motion_preference(
    site: ChatSite, browser: Browser
) -> None:
    motions: tuple[tuple[Literal["reduce", "no-preference"], str], ...] = (
        ("reduce", "none"),
        ("no-preference", "crw-in"),
    )
    for motion, animation in motions:
        context = await browser.new_context(reduced_motion=motion)
        page = await context.new_page()
        widget = Widget(page)
        await page.goto(site.url("/"))
        await widget.launcher.click()
        await expect(widget.panel).to_be_visible()
        assert await widget.panel.evaluate("e => getComputedStyle(e).animationName") == animation
        await context.close()


async def test_the_launcher_shows_on_the_councils_pages_and_wherever_a_chat_goes_on(
    site: ChatSite, page: Page
) -> None:
    site.webchat.config = replace(site.webchat.config, pages=("/bins*",))
    widget = Widget(page)
    async with page.expect_response(re.compile("/webchat/config")):
        await page.goto(site.url("/"))
    await page.wait_for_load_state("networkidle")
    assert await page.locator(".crw").count() == 0  # not a page of the list
    await page.goto(site.url("/bins"))
    await widget.launcher.click()
    await widget.send("hello")
    await page.get_by_role("link", name="Home").click()
    await expect(widget.said("You asked about “hello”.")).to_be_visible()  # the chat goes on


async def test_on_a_welsh_page_the_widget_speaks_welsh(site: ChatSite, page: Page) -> None:
    await page.goto(site.url("/cy"))
    launcher = page.get_by_role("button", name="Sgwrsiwch â ni")
    await launcher.click()
    panel = page.get_by_role("dialog", name=f"Sgwrs gyda {NAME}")
    await expect(panel.get_by_label("Eich neges")).to_be_focused()
    await expect(panel.get_by_role("status").first).to_have_text(
        f"Rydych chi'n sgwrsio â chynorthwyydd awtomatig {NAME}."
    )
    await expect(panel.get_by_role("button", name="Cau'r sgwrs")).to_be_visible()
    assert await page.locator(".crw").get_attribute("lang") == "cy"
    await clean(page, "Welsh")
    await panel.get_by_label("Eich neges").fill("report a pothole")
    await page.keyboard.press("Enter")
    await expect(panel.get_by_role("button", name="Rhannu fy lleoliad")).to_be_visible()
    await clean(page, "Welsh, asking for location")


async def test_the_widget_stays_away_from_a_site_the_council_did_not_allow(
    site: ChatSite, page: Page
) -> None:
    site.webchat.config = replace(
        site.webchat.config, allowed_origins=("https://www.ashvale.gov.uk",)
    )
    widget = Widget(page)
    async with page.expect_console_message(lambda m: "chat unavailable" in m.text):
        await page.goto(site.url("/"))
    await expect(page.get_by_role("heading", level=1)).to_be_visible()
    assert await widget.launcher.count() == 0 and await page.locator(".crw").count() == 0


# The browser's geolocation, counted: it must be asked only when the resident presses the button.
COUNT_LOCATING = """() => {
  window.__located = 0;
  const geo = navigator.geolocation;
  const ask = geo.getCurrentPosition.bind(geo);
  geo.getCurrentPosition = (...args) => { window.__located += 1; return ask(...args); };
  geo.watchPosition = () => { window.__located += 100; return 0; };
}"""
# A position that never comes (the browser gives up: TIMEOUT, code 3).
NEVER_LOCATED = """() => {
  window.__located = 0;
  navigator.geolocation.getCurrentPosition = (ok, fail) => {
    window.__located += 1;
    setTimeout(() => fail({code: 3, message: 'Timeout expired'}), 50);
  };
}"""
# A position that comes late, once the resident has typed the place instead.
LATE_LOCATED = """() => {
  window.__located = 0;
  navigator.geolocation.getCurrentPosition = ok => {
    window.__located += 1;
    window.__arrive = () => ok({coords: {latitude: 51.5, longitude: -1.2, accuracy: 5}});
  };
}"""
# A phone's fix near the library: more decimals than the back office needs.
PIN: Geolocation = {
    "latitude": LIBRARY.latitude + 0.0000012345,
    "longitude": LIBRARY.longitude - 0.0000043,
}
SHARED = f"Location shared: {round(PIN['latitude'], 5)}, {round(PIN['longitude'], 5)}"
ASK_WHERE = "Share your location if you're there now"


async def located(page: Page) -> int:
    """How often the page asked the browser for the position."""
    return int(await page.evaluate("window.__located"))


async def test_a_pothole_report_placed_by_the_residents_shared_location(
    site: ChatSite, browser: Browser
) -> None:
    context = await browser.new_context(geolocation=PIN, permissions=["geolocation"])
    page = await context.new_page()
    problems = watch(page)
    widget = Widget(page)
    await page.goto(site.url("/"))
    await page.evaluate(COUNT_LOCATING)
    await tab_to(page, widget.launcher)
    await page.keyboard.press("Enter")
    await expect(widget.input).to_be_focused()
    await widget.record_announcements()
    await page.keyboard.type("I want to report a pothole")
    await page.keyboard.press("Enter")

    # asking where: the report form's question, and the widget's button in place of its signal
    await expect(widget.said(ASK_WHERE)).to_be_visible()
    share = widget.panel.get_by_role("button", name="Share my location")
    await expect(share).to_be_visible()
    await expect(widget.panel.get_by_role("button", name="/webchat_location")).to_have_count(0)
    await clean(page, "asking for location")
    assert await located(page) == 0  # nothing is asked of the browser until the resident says so

    await page.keyboard.press("Shift+Tab")  # the button sits just before the message box
    await expect(share).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(widget.said(SHARED)).to_be_visible()
    await expect(widget.said("Please describe the problem in a few words")).to_be_visible()
    assert await located(page) == 1
    await expect(share).to_have_count(0)  # answered: the control is gone
    await expect(widget.input).to_be_focused()
    await clean(page, "location shared")

    # the assistant got a pin as the messaging apps send one, trimmed to about a metre
    pinned = site.assistant.received[-1]
    assert (pinned.text, pinned.location is not None) == ("", True)
    assert pinned.location is not None
    assert (pinned.location.latitude, pinned.location.longitude) == (
        round(PIN["latitude"], 5),
        round(PIN["longitude"], 5),
    )

    await page.keyboard.type("A deep hole by the kerb")
    await page.keyboard.press("Enter")
    summary = widget.said("Here's your report:")
    await expect(summary).to_contain_text("Problem: Pothole")
    # the pin by the library is placed on its street (the demo gazetteer)
    await expect(summary).to_contain_text("Where: Mill Lane, AV1 2BX")
    await expect(widget.panel.get_by_role("button", name="Send it")).to_be_visible()
    assert await widget.texts() == [
        GREETING,
        "I want to report a pothole",
        (await widget.said(ASK_WHERE).inner_text()),
        SHARED,
        (await widget.said("Please describe the problem").inner_text()),
        "A deep hole by the kerb",
        (await summary.inner_text()),
    ]
    # one polite announcement per bot message; the resident's own location is not read back
    # (the widget announces 50 ms after showing: wait for the summary's announcement first)
    await expect(page.locator(".crw [aria-live=polite]")).to_contain_text("Here's your report:")
    said = [text for kind, text in await widget.announcements() if kind == "polite"]
    assert len(said) == 3 and not any("Location shared" in text for text in said), said

    # a reload shows the shared location once, from the echo
    await page.reload()
    await expect(widget.said(SHARED)).to_have_count(1)
    await context.close()
    assert problems == []


@pytest.mark.parametrize("failure", ["denied", "timeout"])
async def test_no_location_says_why_keeps_the_focus_and_words_still_work(
    failure: str, site: ChatSite, browser: Browser
) -> None:
    # denied: Chromium itself refuses (the permission is not granted to this context)
    context = await browser.new_context()
    page = await context.new_page()
    problems = watch(page)
    widget = Widget(page)
    await page.goto(site.url("/"))
    await page.evaluate(COUNT_LOCATING if failure == "denied" else NEVER_LOCATED)
    await widget.launcher.click()
    await widget.send("report a pothole")
    share = widget.panel.get_by_role("button", name="Share my location")
    await share.focus()
    await expect(page.locator(".crw [aria-live=polite]")).to_contain_text(ASK_WHERE)
    await widget.record_announcements()
    await page.keyboard.press("Enter")
    why = {
        "denied": "Your browser didn't let the chat use your location.",
        "timeout": "Finding your location took too long.",
    }[failure]
    await expect(widget.said(why)).to_be_visible()
    await expect(share).to_be_focused()  # kept where it was: the resident may try again
    await expect(share).not_to_have_attribute("aria-disabled", "true")
    assert await located(page) == 1
    await expect(page.locator(".crw [aria-live=polite]")).to_contain_text(why)
    said = await widget.announcements()
    assert [kind for kind, _ in said] == ["polite"] and why in said[0][1], said
    await clean(page, f"location {failure}")
    assert not [m for m in site.assistant.received if m.location is not None]

    # typing the place still works
    await widget.send("AV1 2BX")
    await expect(widget.said("Please describe the problem in a few words")).to_be_visible()
    await expect(share).to_have_count(0)
    await context.close()
    assert problems == []


async def test_a_position_that_comes_after_the_place_was_typed_is_not_sent(
    site: ChatSite, page: Page
) -> None:
    widget = Widget(page)
    await page.goto(site.url("/"))
    await page.evaluate(LATE_LOCATED)
    await widget.launcher.click()
    await widget.send("report a pothole")
    await widget.panel.get_by_role("button", name="Share my location").click()
    await expect(widget.panel.get_by_text("Finding your location…")).to_be_visible()
    await widget.send("AV1 2BX")
    await expect(widget.said("Please describe the problem in a few words")).to_be_visible()
    await page.evaluate("window.__arrive()")
    await widget.send("A deep hole")  # anything sent after it has been handled
    await expect(widget.said("Here's your report:")).to_be_visible()
    assert await located(page) == 1
    assert not [m for m in site.assistant.received if m.location is not None]
    assert "Location shared" not in " ".join(await widget.texts())


@pytest.mark.e2e
async def test_the_real_assistant_answers_a_bin_day_question_in_the_widget(
    assistant: Assistant, async_redis: redis.asyncio.Redis, page: Page
) -> None:
    # The edge queues into the real assistant's namespace; its Rasa server's web chat workers
    # (credentials.demo.yml) answer, with the demo council's profile and bin rounds.
    config = current_profile().webchat
    assert config is not None, "the demo profile has a webchat section"
    always = OpeningHours(open_at=time(0), close_at=time(23, 59, 59), weekdays=frozenset(range(7)))
    webchat = WebChat(config, SECRET, Inbox(async_redis, assistant.namespace), always)
    problems = watch(page)
    async with edge_and_site(webchat) as (_edge, site):
        widget = Widget(page, config.name)
        await page.goto(site.make_url("/bins"))
        await widget.launcher.click()
        await expect(widget.said(config.greeting)).to_be_visible()
        await widget.send("when do the bins go out at AV1 2BX")
        choice = widget.panel.get_by_role("button", name="4 Mill Lane")
        await expect(choice).to_be_visible(timeout=60_000)  # the first turn warms the model
        await clean(page, "the assistant's buttons")
        await choice.click()
        # the answer comes as several messages: the collections, then the calendar link
        label = current_profile().bins["general"].label
        answer = page.locator(".crw-from-bot .crw-text", has_text=label)
        await expect(answer).to_be_visible(timeout=30_000)
        await clean(page, "the assistant's answer")
        await widget.send("how do I pay my council tax online")
        await expect(page.locator(".crw-from-bot a[href^='https://']").last).to_be_visible(
            timeout=30_000
        )
    assert problems == []

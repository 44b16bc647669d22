"""The real assistant behind the public edge: signed webhooks in, replies at a fake provider.

The edge (``python -m bot.edge``, Starlette on uvicorn) receives the signed webhooks and
queues them; one Rasa server and action server, on loopback only, open
``bot.channels.rasa.WhatsAppInput`` and ``TelegramInput`` (their workers read the inbox; the
real ``twilio`` Client and python-telegram-bot ``Bot`` send to a local fake provider API); the
web console runs in this process against the same Redis namespace.
"""

from __future__ import annotations

import json
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import psutil
import pytest
from argon2 import PasswordHasher
from playwright.async_api import expect

from bot.handoff.queue import HandoffQueue
from bot.handoff.record import TEAMS
from bot.handoff.resume import RasaResumer, Resumer
from bot.profile import current
from bot.redis_conn import connect_async
from bot.testing.assistant import Assistant
from bot.testing.browser import LocalServer, chromium, serve
from bot.testing.channels import WEBHOOKS, ChannelAccounts, behind_the_edge, edge_url
from bot.testing.providers import ProviderThread, Recorded
from bot.web.accounts import User
from bot.web.agent import RESUME
from bot.web.app import ACCOUNTS, Settings, create_app

pytestmark = pytest.mark.e2e

CHANNELS = ChannelAccounts()


@pytest.fixture(scope="module")
def assistant(
    redis_url: str, tmp_path_factory: pytest.TempPathFactory, provider: ProviderThread
) -> Iterator[Assistant]:
    folder = tmp_path_factory.mktemp("channels")
    credentials = CHANNELS.write(folder / "credentials.yml", provider.url)
    env = {
        **CHANNELS.env(),
        # a killed server's conversation lock expires after this (Rasa's default is 60 s)
        "TICKET_LOCK_LIFETIME": "10",
    }
    namespace = f"{{e2ech{uuid.uuid4().hex[:10]}}}"  # its own hash tag, as the stores write it
    with behind_the_edge(redis_url, namespace, folder, credentials, env) as running:
        yield running


def new_resident() -> str:
    return f"+447700{secrets.randbelow(10**6):06d}"


def post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, body, headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as refused:
        return refused.code


def whatsapp(assistant: Assistant, resident: str, text: str, *, name: str = "Alex Jones") -> bytes:
    """A recorded Twilio WhatsApp webhook, re-addressed; returns the body it posted."""
    form = CHANNELS.whatsapp_form(resident, "whatsapp_text.txt", ProfileName=name, Body=text)
    return urllib.parse.urlencode(form).encode()


def send_whatsapp(assistant: Assistant, body: bytes, *, signature: str | None = None) -> int:
    url = f"{edge_url(assistant)}/webhooks/whatsapp/webhook"
    headers = CHANNELS.twilio_headers(url, dict(urllib.parse.parse_qsl(body.decode())))
    if signature is not None:
        headers["X-Twilio-Signature"] = signature
    return post(url, body, headers)


def to_whatsapp(resident: str) -> Callable[[Recorded], bool]:
    return lambda r: r.path.endswith("/Messages.json") and r.form()["To"] == f"whatsapp:{resident}"


def replies(provider: ProviderThread, resident: str, count: int = 1) -> list[str]:
    return [r.form()["Body"] for r in provider.wait_for(to_whatsapp(resident), count)]


def test_whatsapp_question_is_answered_once_even_when_twilio_retries(
    assistant: Assistant, provider: ProviderThread
) -> None:
    resident = new_resident()
    body = whatsapp(assistant, resident, "When is my bin day?")
    assert send_whatsapp(assistant, body) == 200
    assert send_whatsapp(assistant, body) == 200  # Twilio's retry of the same MessageSid
    assert send_whatsapp(assistant, body, signature="forged") == 403
    [reply] = replies(provider, resident)
    assert "postcode" in reply.lower()
    time.sleep(1.5)  # a duplicate would have arrived by now
    assert len(provider.wait_for(to_whatsapp(resident))) == 1


async def test_safeguarding_over_telegram_is_a_top_priority_handoff(
    assistant: Assistant, provider: ProviderThread
) -> None:
    update = json.loads((WEBHOOKS / "telegram" / "text.json").read_text())
    chat_id = 700_000_000 + secrets.randbelow(10**6)
    update["update_id"] = secrets.randbelow(10**9)
    update["message"]["chat"]["id"] = update["message"]["from"]["id"] = chat_id
    update["message"]["text"] = "my partner hits me and I'm scared to go home tonight"
    url = f"{edge_url(assistant)}/webhooks/telegram/webhook"
    headers = CHANNELS.telegram_headers()
    body = json.dumps(update).encode()
    assert post(url, body, {**headers, "X-Telegram-Bot-Api-Secret-Token": "wrong"}) == 403
    assert post(url, body, headers) == 200

    [sent] = provider.wait_for(
        lambda r: (
            r.path == f"/bot{CHANNELS.telegram_token}/sendMessage"
            and str(r.fields().get("chat_id")) == str(chat_id)
        )
    )
    assert "999" in str(sent.fields()["text"])
    client = await connect_async(assistant.redis_url)
    try:
        queue = HandoffQueue(client, assistant.namespace)
        case_id = await queue.case_for(f"telegram:councilbot:{chat_id}")
        assert case_id is not None
        record = await queue.get(case_id)
        assert record is not None
        assert (record.channel, record.account, record.priority, record.team) == (
            "telegram",
            "councilbot",
            "P1",
            current().routing.safeguarding,
        )
        assert record.display_name == "Priya Shah"
        assert record.window is None  # Telegram has no messaging window
    finally:
        await client.close()


async def test_server_killed_between_acknowledgement_and_reply_loses_nothing(
    assistant: Assistant, provider: ProviderThread
) -> None:
    resident = new_resident()
    client = await connect_async(assistant.redis_url)
    inbox = f"{assistant.namespace}:inbox"
    try:
        assistant.pause("actions")  # Rasa will hang on the handoff action...
        try:
            body = whatsapp(assistant, resident, "can I talk to a real person please")
            assert send_whatsapp(assistant, body) == 200  # ...after Twilio has its 200
            for _ in range(100):
                pending = await client.xpending(inbox, "workers")
                if pending["pending"]:
                    break
                time.sleep(0.1)
            assert pending["pending"] == 1, "the worker never took the message"
            time.sleep(1.0)  # Rasa is now waiting on the action server
            assistant.kill("rasa")
        finally:
            assistant.resume("actions")
        assert not provider.fake.requests or not any(
            map(to_whatsapp(resident), provider.fake.requests)
        )

        assistant.restart("rasa")
        [reply] = replies(provider, resident)
        assert "a person" in reply.lower()
        time.sleep(1.5)
        assert len(provider.wait_for(to_whatsapp(resident))) == 1
        queue = HandoffQueue(client, assistant.namespace)
        case_id = await queue.case_for(f"whatsapp:{CHANNELS.number}:{resident}")
        assert case_id is not None
        record = await queue.get(case_id)
        assert record is not None
        assert (record.channel, record.reason) == ("whatsapp", "asked_for_person")
        assert record.window is not None and record.window["open"] is True
        assert (await client.xpending(inbox, "workers"))["pending"] == 0
    finally:
        await client.close()


@pytest.fixture
async def console(assistant: Assistant) -> AsyncIterator[tuple[LocalServer, User, str]]:
    client = await connect_async(assistant.redis_url)
    settings = Settings(
        secret_key=secrets.token_bytes(32),
        secure_cookies=False,
        password_hasher=PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1),
    )
    app = create_app(
        client, namespace=assistant.namespace, settings=settings, sections=("bot.web.agent",)
    )
    resumer: Resumer = RasaResumer(assistant.rasa_url, assistant.auth_token)
    app[RESUME] = resumer
    password = secrets.token_urlsafe(16)
    user = await app[ACCOUNTS].create(f"agent{uuid.uuid4().hex[:6]}", password, ("agent",), TEAMS)
    async with serve(app) as server:
        yield server, user, password
    await client.close()


@pytest.mark.browser
async def test_whatsapp_handoff_answered_from_the_console_in_chromium(
    assistant: Assistant,
    provider: ProviderThread,
    console: tuple[LocalServer, User, str],
) -> None:
    server, user, password = console
    resident = new_resident()
    async with chromium() as browser:
        page = await browser.new_page()
        await page.goto(server.make_url("/agent/"))
        await page.get_by_label("Username").fill(user.username)
        await page.get_by_label("Password").fill(password)
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.get_by_role("heading", level=1)).to_have_text("Handoff queue")

        body = whatsapp(assistant, resident, "I want to speak to a person", name="Robin Live")
        assert send_whatsapp(assistant, body) == 200
        [holding] = replies(provider, resident)
        assert "a person" in holding.lower()

        link = page.get_by_role("link", name="Robin Live")
        await expect(link).to_be_visible(timeout=15_000)  # arrived without a reload
        await link.click()
        await expect(page.locator("#window")).to_contain_text("open until")
        await page.get_by_role("button", name="Claim").click()
        await expect(page.locator("#done")).to_have_text("Done: claimed.")
        await page.get_by_label("Reply", exact=True).fill(
            "Hello Robin, this is Sam at the council."
        )
        await page.get_by_role("button", name="Send on whatsapp").click()
        await expect(page.locator("#done")).to_have_text("Done: sent.")
        answered = replies(provider, resident, 2)
        assert answered[1] == "Hello Robin, this is Sam at the council."

        await page.get_by_role("button", name="Return to bot").click()
        await expect(page.locator("#done")).to_have_text("Done: returned to bot.")
        await page.close()

    assert send_whatsapp(assistant, whatsapp(assistant, resident, "when is my bin day?")) == 200
    assert "postcode" in replies(provider, resident, 3)[2].lower()


def test_only_the_edge_faces_out_and_it_serves_no_rest_channel(assistant: Assistant) -> None:
    for name in ("rasa", "actions"):
        process = psutil.Process(assistant.services[name].process.pid)
        family = [*process.children(recursive=True), process]
        listening = [
            c.laddr.ip
            for member in family
            for c in member.net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN
        ]
        assert listening, f"{name} listens nowhere?"
        assert all(ip in ("127.0.0.1", "::1") for ip in listening), (name, listening)
    body = json.dumps({"sender": "whatsapp:+441234567890:+447700900123", "message": "hi"})
    for path in ("/webhooks/rest/webhook", "/conversations/x/tracker/events", "/model/parse"):
        assert post(f"{edge_url(assistant)}{path}", body.encode(), {}) == 404, path

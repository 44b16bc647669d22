"""Editor console pages over HTTP (real server, real Redis, real model) and in Chromium."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import pytest
import redis.asyncio
from httpx import AsyncClient
from playwright.async_api import Page, expect

from bot.knowledge.content import load_entries
from bot.knowledge.embedding import CachingEncoder, default_encoder
from bot.knowledge.gate import DEFAULT_CONVERSATIONS, load_conversations
from bot.knowledge.store import KnowledgeBase
from bot.testing.accessibility import axe_violations, describe, horizontal_overflow
from bot.testing.browser import LocalServer
from bot.testing.console import Csrf, FakeClock, Login, MakeUser
from bot.web.app import AUDIT, NAMESPACE, REDIS, ConsoleApp, Settings, create_app
from bot.web.editor import CONVERSATIONS_ENV, KB

ROOT = Path(__file__).resolve().parents[2]
ENTRY = "/editor/entry/report-pothole"


@pytest.fixture(scope="session")
def kb_encoder() -> CachingEncoder:
    return CachingEncoder(default_encoder(str(ROOT / "config.yml")))


@pytest.fixture
def console_sections() -> tuple[str, ...]:
    return ("bot.web.editor",)


@pytest.fixture
async def console_app(console_app: ConsoleApp, kb_encoder: CachingEncoder) -> ConsoleApp:
    kb = KnowledgeBase(
        console_app[REDIS],
        console_app[NAMESPACE],
        encoder=kb_encoder,
        conversations=load_conversations(),
        refresh_seconds=0,
    )
    for entry in load_entries(ROOT / "responses" / "knowledge"):
        await kb.import_entry(entry, "cli", "demo")
    console_app[KB] = kb
    return console_app


def _form(values: dict[str, str], **changes: str) -> dict[str, str]:
    return values | changes


async def _edit_form(client: AsyncClient, path: str = ENTRY) -> dict[str, str]:
    """The edit form's current values, read from the page like a browser would."""
    html = (await client.get(path)).text
    form = html[html.index(f'action="{path}"') :]
    form = form[: form.index("</form>")]
    values = dict(re.findall(r'<input[^>]*name="(\w+)"[^>]*value="([^"]*)"', form))
    values |= dict(re.findall(r'<textarea[^>]*name="(\w+)"[^>]*>([^<]*)</textarea>', form))
    return {k: v.replace("&#39;", "'").replace("&amp;", "&") for k, v in values.items()}


async def _audit_actions(app: ConsoleApp) -> list[str]:
    return [e.action for e in await app[AUDIT].recent(object_type="kb_entry")]


async def test_pages_need_the_editor_role(
    client: AsyncClient, login: Login, csrf: Csrf, console_server: LocalServer
) -> None:
    anonymous = await client.get("/editor/", follow_redirects=False)
    assert anonymous.status_code == 302 and anonymous.headers["Location"].startswith("/login")
    agent = await login("agent")
    assert (await agent.get("/editor/")).status_code == 403
    response = await agent.post(f"{ENTRY}/publish", data={"csrf_token": await csrf(agent)})
    assert response.status_code == 403
    editor = await login("editor")
    page = await editor.get("/editor/?q=pothole")
    assert page.status_code == 200
    html = page.text
    assert "report-pothole" in html and "parking-fine-pay" not in html


async def test_posts_without_csrf_token_are_refused(login: Login) -> None:
    editor = await login("editor")
    response = await editor.post(f"{ENTRY}/archive", data={"reason": "x"})
    assert response.status_code == 403
    assert (await editor.get(ENTRY)).status_code == 200
    assert "Done" not in (await editor.get(ENTRY)).text


async def test_save_preview_publish_and_audit(
    login: Login, csrf: Csrf, console_app: ConsoleApp
) -> None:
    editor = await login("editor")
    values = await _edit_form(editor)
    assert values["topic"] == "report_pothole"
    new_sms = "Report potholes at https://www.ashvale.gov.uk/report/pothole - fixed fast."
    token = await csrf(editor)
    preview = await editor.post(
        ENTRY,
        data=_form(values, answer_sms=new_sms, action="preview", csrf_token=token, reason="r"),
    )
    assert preview.status_code == 200 and new_sms in preview.text
    kb = console_app[KB]
    assert (await kb.get("report-pothole")).answers["sms"] != new_sms  # preview stores nothing
    saved = await editor.post(
        ENTRY, data=_form(values, answer_sms=new_sms, action="save", csrf_token=token, reason="r")
    )
    assert saved.status_code == 200 and "Done: saved" in saved.text
    assert (await kb.get("report-pothole")).status == "draft"
    live = await kb.live("report-pothole")
    assert live is not None and live.answers["sms"] != new_sms
    published = await editor.post(
        f"{ENTRY}/publish", data={"csrf_token": token, "reason": "clearer"}
    )
    assert published.status_code == 200 and "Done: published" in published.text
    live = await kb.live("report-pothole")
    assert live is not None and live.answers["sms"] == new_sms
    assert {"kb.save", "kb.publish"} <= set(await _audit_actions(console_app))


async def test_bad_edit_shows_problems_and_keeps_text(
    login: Login, csrf: Csrf, console_app: ConsoleApp
) -> None:
    editor = await login("editor")
    values = await _edit_form(editor)
    response = await editor.post(
        ENTRY,
        data=_form(
            values,
            answer_default="",
            answer_sms="See htps://ashvale.gov.uk/x",
            action="save",
            reason="oops",
            csrf_token=await csrf(editor),
        ),
    )
    assert response.status_code == 422
    html = response.text
    assert "the answer must not be empty" in html and "not a valid web address" in html
    assert "See htps://ashvale.gov.uk/x" in html  # the editor's text is still in the form
    assert len(await console_app[KB].versions("report-pothole")) == 1


async def test_gate_blocks_then_admin_overrides(
    login: Login, csrf: Csrf, console_app: ConsoleApp
) -> None:
    editor = await login("editor")
    token = await csrf(editor)
    path = "/editor/entry/report-street-light"
    values = await _edit_form(editor, path)
    greedy = values["questions"] + "\nsomeone dumped a load of rubbish by the canal"
    checked = await editor.post(
        path, data=_form(values, questions=greedy, action="check", csrf_token=token, reason="r")
    )
    html = checked.text
    assert "would get a different answer" in html and "by the canal" in html
    await editor.post(
        path, data=_form(values, questions=greedy, action="save", csrf_token=token, reason="r")
    )
    blocked = await editor.post(f"{path}/publish", data={"csrf_token": token, "reason": "go"})
    assert blocked.status_code == 409
    assert "expects report-fly-tipping, would get report-street-light" in blocked.text
    refused = await editor.post(
        f"{path}/publish", data={"csrf_token": token, "reason": "go", "override": "1"}
    )
    assert refused.status_code == 403
    admin = await login("admin")
    done = await admin.post(
        f"{path}/publish",
        data={"csrf_token": await csrf(admin), "reason": "accepted", "override": "1"},
    )
    assert done.status_code == 200
    versions = await console_app[KB].versions("report-street-light")
    assert versions[-1].override_by and versions[-1].action == "publish"
    actions = await _audit_actions(console_app)
    assert "kb.publish.blocked" in actions and "kb.publish" in actions


async def test_rollback_diff_review_and_try(
    login: Login, csrf: Csrf, console_app: ConsoleApp
) -> None:
    editor = await login("editor")
    token = await csrf(editor)
    values = await _edit_form(editor)
    changed = values["answer_default"].replace("5 working days", "2 working days")
    await editor.post(
        ENTRY,
        data=_form(values, answer_default=changed, action="save", csrf_token=token, reason="r"),
    )
    await editor.post(f"{ENTRY}/publish", data={"csrf_token": token, "reason": "faster"})
    diff = (await editor.get(f"{ENTRY}/diff?a=1&b=3")).text
    assert "answers.default" in diff and "2 working days" in diff and "5 working days" in diff
    rolled = await editor.post(
        f"{ENTRY}/rollback", data={"csrf_token": token, "version": "1", "reason": "undo"}
    )
    assert rolled.status_code == 200
    live = await console_app[KB].live("report-pothole")
    assert live is not None and "5 working days" in live.answers["default"]
    assert (await editor.get(f"{ENTRY}/diff?a=1&b=99")).status_code == 404
    review = (await editor.get("/editor/review")).text
    assert "housing-repair-emergency" in review and "report-pothole" not in review
    tried = await editor.post(
        "/editor/try", data={"csrf_token": token, "question": "a pothole outside my school"}
    )
    text = tried.text
    assert "report-pothole" in text and "by similarity" in text
    nothing = await editor.post(
        "/editor/try", data={"csrf_token": token, "question": "who won the football"}
    )
    assert "handed to a person" in nothing.text


async def test_try_shows_the_clarifying_question_a_resident_would_get(
    login: Login, csrf: Csrf, console_app: ConsoleApp
) -> None:
    # unsure and near several topics: the resident is asked which one (issue 13), as
    # action_answer does with the same selector (Index.alternatives)
    editor = await login("editor")
    token = await csrf(editor)
    kb = console_app[KB]
    index = await kb.refresh()
    offered = index.alternatives(index.encode_message("council tax"), datetime.now().astimezone())
    assert len(offered) >= 2
    tried = await editor.post("/editor/try", data={"csrf_token": token, "question": "council tax"})
    text = tried.text
    assert "handed to a person" not in text
    assert "would be asked a clarifying question" in text
    for option in offered:
        assert f'href="/editor/entry/{option.entry.id}"' in text
        assert str(option.entry.title) in text
    assert "Something else" in text


async def test_new_entry_and_second_person_approval(
    login: Login, csrf: Csrf, console_app: ConsoleApp
) -> None:
    kb = console_app[KB]
    await kb.set_approval_required("Libraries", True)
    alice = await login("editor", username="alice")
    token = await csrf(alice)
    form = {
        "csrf_token": token,
        "id": "library-hours",
        "topic": "library_hours",
        "questions": "When is the library open?\nLibrary opening times",
        "answer_default": "Ashvale Library is open 9am to 7pm: https://www.ashvale.gov.uk/libraries",
        "owner_team": "Libraries",
        "review_by": "2027-06-30",
        "reason": "new service",
    }
    created = await alice.post("/editor/new", data=form)
    assert created.status_code == 200 and "Done: saved" in created.text
    again = await alice.post("/editor/new", data=form)
    assert again.status_code == 422 and "already used" in again.text
    path = "/editor/entry/library-hours"
    page = (await alice.get(path)).text
    assert 'id="publish"' not in page and "Ask for approval" in page
    await alice.post(f"{path}/approval", data={"csrf_token": token})
    self_approve = await alice.post(
        f"{path}/publish", data={"csrf_token": token, "reason": "x", "approve": "1"}
    )
    assert self_approve.status_code == 409 and "a second person must approve" in self_approve.text
    bob = await login("editor", username="bob")
    assert "Approve version 1 and publish" in (await bob.get(path)).text
    approved = await bob.post(
        f"{path}/publish", data={"csrf_token": await csrf(bob), "reason": "ok", "approve": "1"}
    )
    assert approved.status_code == 200
    version = (await kb.versions("library-hours"))[-1]
    assert version.author == "alice" and "approved by bob" in version.reason
    assert version.approved_by == "bob"
    assert await kb.live("library-hours") is not None


async def test_an_edit_after_the_request_cannot_be_approved(
    login: Login, csrf: Csrf, console_app: ConsoleApp
) -> None:
    # finding 2: editor 2 saved their own text after the request and approved it
    kb = console_app[KB]
    entry = await kb.get(ENTRY.rsplit("/", 1)[-1])
    await kb.set_approval_required(entry.owner_team, True)
    alice = await login("editor", username="alice")
    bob = await login("editor", username="bob")
    asked = await alice.post(f"{ENTRY}/approval", data={"csrf_token": await csrf(alice)})
    assert asked.status_code == 200
    requested = (await kb.head(entry.id)).number
    live_before = await kb.live(entry.id)
    form = _form(await _edit_form(bob), answer_default="Bob's own unreviewed text.")
    assert (await bob.post(ENTRY, data=form)).status_code == 200
    token = await csrf(bob)
    for number in (requested, requested + 1):
        refused = await bob.post(
            f"{ENTRY}/publish", data={"csrf_token": token, "reason": "ok", "approve": str(number)}
        )
        assert refused.status_code == 409
    assert await kb.live(entry.id) == live_before
    history = (await bob.get(ENTRY)).text
    assert "Ask for approval" in history and "Approve version" not in history


@pytest.mark.browser
async def test_browser_edit_preview_publish_rollback(
    page: Page,
    console_server: LocalServer,
    make_user: MakeUser,
    console_app: ConsoleApp,
) -> None:
    user, password = await make_user("editor")
    base = str(console_server.make_url("/")).rstrip("/")
    await page.set_viewport_size({"width": 820, "height": 1180})  # a tablet
    await page.goto(f"{base}/editor/")
    await page.fill("#username", user.username)
    await page.fill("#password", password)
    await page.click("button[type=submit]")
    await page.goto(f"{base}/editor/?q=pothole")
    await page.click("text=Report a pothole")
    new_whatsapp = "Report a pothole at https://www.ashvale.gov.uk/report/pothole (new text)."
    await page.fill("#answer_whatsapp", new_whatsapp)
    await page.fill("#reason", "shorter")
    await page.click("button[value=preview]")
    await expect(page.locator('.preview[data-channel="whatsapp"]')).to_have_text(new_whatsapp)
    await page.click("button[value=save]")
    await expect(page.locator("#done")).to_contain_text("saved")
    await page.fill("#publish_reason", "clearer")
    await page.click("#publish")
    await expect(page.locator("#done")).to_contain_text("published")
    live = await console_app[KB].live("report-pothole")
    assert live is not None and live.answers["whatsapp"] == new_whatsapp
    await page.click('[data-rollback="1"]')
    await expect(page.locator("#done")).to_contain_text("rolled back")
    live = await console_app[KB].live("report-pothole")
    assert live is not None and live.answers["whatsapp"] != new_whatsapp


@pytest.mark.browser
async def test_browser_try_shows_the_clarifying_question(
    page: Page, console_server: LocalServer, make_user: MakeUser
) -> None:
    # keyboard only, at 320 px: the topics a resident would be asked about, axe clean
    user, password = await make_user("editor")
    base = str(console_server.make_url("/")).rstrip("/")
    await page.set_viewport_size({"width": 320, "height": 640})
    await page.goto(f"{base}/editor/try")
    await page.fill("#username", user.username)
    await page.fill("#password", password)
    await page.keyboard.press("Enter")
    await page.locator("#question").focus()
    await page.keyboard.type("council tax")
    await page.keyboard.press("Enter")
    result = page.locator("#result")
    await expect(result).to_contain_text("would be asked a clarifying question")
    await expect(result.locator("li").last).to_have_text("Something else")
    assert await result.locator("li a").count() >= 2
    assert not (violations := await axe_violations(page)), describe(violations)
    assert await horizontal_overflow(page) == 0


async def test_admin_sets_teams_needing_approval(
    login: Login, csrf: Csrf, console_app: ConsoleApp
) -> None:
    editor = await login("editor")
    assert (await editor.get("/editor/approval")).status_code == 403
    admin = await login("admin")
    page = (await admin.get("/editor/approval")).text
    assert "Highways" in page and "Housing" in page
    token = await csrf(admin)
    saved = await admin.post("/editor/approval", data={"csrf_token": token, "teams": "Housing"})
    assert saved.status_code == 200
    kb = console_app[KB]
    assert await kb.approval_required("Housing") and not await kb.approval_required("Highways")
    assert "kb.approval.teams" in [e.action for e in await console_app[AUDIT].recent()]


@pytest.mark.parametrize(
    ("today", "review_by"),
    [(datetime(2028, 2, 29, 12), "2029-02-28"), (datetime(2026, 11, 30, 12), "2027-11-30")],
)
async def test_a_new_entry_is_reviewed_a_year_on_even_from_29_february(
    login: Login, clock: FakeClock, today: datetime, review_by: str
) -> None:
    clock.now = today.timestamp()  # the console's clock, local time like date.today()
    editor = await login("editor")
    page = await editor.get("/editor/new")
    assert page.status_code == 200
    found = re.search(r'name="review_by"[^>]*value="([^"]*)"', page.text)
    assert found and found[1] == review_by


async def test_the_console_finds_the_gate_conversations_from_any_working_directory(
    async_redis: redis.asyncio.Redis,
    namespace: str,
    console_settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # started by systemd or a container, not from the checkout
    monkeypatch.delenv(CONVERSATIONS_ENV, raising=False)
    app = create_app(
        async_redis, namespace=namespace, settings=console_settings, sections=("bot.web.editor",)
    )
    sources = {conversation.source for conversation in app[KB].conversations}
    assert sources == {str(path) for path in DEFAULT_CONVERSATIONS.glob("*.yml")} != set()

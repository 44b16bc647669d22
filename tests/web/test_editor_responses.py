"""Editors change what residents read (/editor/responses/): checks, versions, approval, audit."""

from __future__ import annotations

import html
import re

import pytest
from httpx import AsyncClient
from playwright.async_api import Browser, expect

from bot.profile import current
from bot.response_edits import ResponseStore
from bot.testing.accessibility import axe_violations, describe, horizontal_overflow
from bot.testing.browser import LocalServer
from bot.testing.console import Csrf, Login, MakeUser, fill_sign_in
from bot.web.app import AUDIT, ConsoleApp
from bot.web.responses_editor import RESPONSES

GREET = "utter_greet"
PAGE = f"/editor/responses/{GREET}"
REPORTED = "/editor/responses/utter_bin_missed_reported"


@pytest.fixture
def console_sections() -> tuple[str, ...]:
    return ("bot.web.responses_editor",)


def _store(app: ConsoleApp) -> ResponseStore:
    return app[RESPONSES]


async def _audit(app: ConsoleApp) -> list[str]:
    return [e.action for e in await app[AUDIT].recent(object_type="response")]


def _textarea(page: str) -> str:
    found = re.search(r'<textarea id="text" name="text"[^>]*>([^<]*)</textarea>', page)
    assert found, "no text field"
    return html.unescape(found[1])


async def _post(client: AsyncClient, csrf: Csrf, path: str, **form: str) -> object:
    return await client.post(path, data={"csrf_token": await csrf(client), **form})


async def test_only_editors_see_the_replies_and_every_variation_is_listed(
    client: AsyncClient, login: Login, csrf: Csrf
) -> None:
    anonymous = await client.get("/editor/responses/", follow_redirects=False)
    assert anonymous.status_code == 302 and anonymous.headers["Location"].startswith("/login")
    agent = await login("agent")
    assert (await agent.get("/editor/responses/")).status_code == 403
    refused = await agent.post(PAGE, data={"csrf_token": await csrf(agent), "text": "x"})
    assert refused.status_code == 403
    editor = await login("editor")
    listing = (await editor.get("/editor/responses/")).text
    assert "utter_handoff_safeguarding.alert-not_sent.language-cy.opens-today" in listing
    assert (
        f"Hello, this is {html.escape(current().name)}" not in listing
    )  # as shipped: {council_name}
    welsh = (await editor.get("/editor/responses/?language=cy&q=greet")).text
    assert (
        "utter_greet.language-cy" in welsh and 'href="/editor/responses/utter_greet"' not in welsh
    )
    assert (await editor.get("/editor/responses/utter_nope")).status_code == 404


async def test_a_post_without_the_csrf_token_is_refused(
    login: Login, console_app: ConsoleApp
) -> None:
    editor = await login("editor")
    response = await editor.post(PAGE, data={"text": "Hi {council_name}", "reason": "x"})
    assert response.status_code == 403
    assert await _store(console_app).heads() == []


@pytest.mark.parametrize(
    ("path", "text", "problem"),
    [
        (PAGE, "Hi from {council_nmae}, {council_name}.", "{council_nmae} is not a value"),
        (REPORTED, "Sorry, we will collect your {bin_label} soon.", "{reference} is missing"),
        (PAGE, "<b>Hello</b> from {council_name}.", "remove the HTML <b>"),
        (PAGE, "Hello from {council_name}: http://example.org", "must start with https://"),
        (PAGE, "Hello from {council_name", "without its partner"),
    ],
)  # fmt: skip
async def test_a_bad_text_is_refused_with_the_reason_and_kept_in_the_form(
    login: Login, csrf: Csrf, console_app: ConsoleApp, path: str, text: str, problem: str
) -> None:
    editor = await login("editor")
    response = await editor.post(
        path,
        data={"csrf_token": await csrf(editor), "text": text, "reason": "try", "action": "save"},
    )
    assert response.status_code == 422
    assert problem in html.unescape(response.text)
    assert _textarea(response.text) == text
    assert await _store(console_app).heads() == []


async def test_preview_save_publish_diff_rollback_and_the_shipped_text_again(
    login: Login, csrf: Csrf, console_app: ConsoleApp
) -> None:
    store = _store(console_app)
    editor = await login("editor", username="edna")
    page = (await editor.get(PAGE)).text
    assert _textarea(page) == store.shipped[GREET].text
    assert "This text must keep" in page and "{council_name}" in page
    token = await csrf(editor)
    first = "Good morning from {council_name}. Ask about bins or council tax."
    preview = await editor.post(
        PAGE, data={"csrf_token": token, "text": first, "reason": "r", "action": "preview"}
    )
    assert preview.status_code == 200
    assert f"Good morning from {html.escape(current().name)}" in preview.text  # the profile's value
    assert await store.heads() == []  # a preview stores nothing
    saved = await editor.post(
        PAGE, data={"csrf_token": token, "text": first, "reason": "warmer", "action": "save"}
    )
    assert saved.status_code == 200 and "Done: saved" in saved.text
    assert await store.published_texts() == {}  # residents keep the shipped text until published
    published = await editor.post(f"{PAGE}/publish", data={"csrf_token": token, "reason": "warmer"})
    assert "Done: published" in published.text and 'id="status">edited text' in published.text
    assert await store.published_texts() == {GREET: first}
    second = "Hi from {council_name}."
    await editor.post(
        PAGE, data={"csrf_token": token, "text": second, "reason": "shorter", "action": "save"}
    )
    await editor.post(f"{PAGE}/publish", data={"csrf_token": token, "reason": "shorter"})
    diff = await editor.get(f"{PAGE}/diff?a=2&b=4")
    assert diff.status_code == 200
    assert re.search(r'class="removed".*Good morning from \{council_name\}', diff.text)
    assert re.search(r'class="added".*Hi from \{council_name\}\.', diff.text)
    back = await editor.post(
        f"{PAGE}/rollback", data={"csrf_token": token, "version": "2", "reason": "r"}
    )
    assert "Done: rolled back" in back.text
    assert await store.published_texts() == {GREET: first}
    history = (await editor.get(PAGE)).text
    assert history.count('data-rollback="') == 4 and "edna" in history
    shipped = await editor.post(
        f"{PAGE}/archive", data={"csrf_token": token, "reason": "as shipped"}
    )
    assert 'id="status">shipped text' in shipped.text
    assert await store.published_texts() == {}
    assert _textarea(shipped.text) == store.shipped[GREET].text
    assert await _audit(console_app) == [  # newest first
        "responses.archive",
        "responses.rollback",
        "responses.publish",
        "responses.save",
        "responses.publish",
        "responses.save",
    ]


async def test_a_group_that_needs_a_second_person(
    login: Login, csrf: Csrf, console_app: ConsoleApp
) -> None:
    store = _store(console_app)
    editor = await login("editor")
    assert (await editor.get("/editor/responses/approval")).status_code == 403
    admin = await login("admin")
    settings = (await admin.get("/editor/responses/approval")).text
    assert "Groups whose publishes need a second editor" in settings and "handoff" in settings
    await _post(admin, csrf, "/editor/responses/approval", teams="handoff")
    assert await store.approval_required("handoff") and not await store.approval_required("core")
    path = "/editor/responses/utter_handoff_rephrase"
    text = "Sorry, I couldn't read that. Please tell me in words, or say 'talk to a person'."
    await _post(editor, csrf, path, text=text, reason="clearer", action="save")
    blocked = await _post(editor, csrf, f"{path}/publish", reason="now")
    assert blocked.status_code == 409 and "group handoff needs a second person" in blocked.text  # type: ignore[attr-defined]
    asked = await _post(editor, csrf, f"{path}/approval")
    assert "Done: approval requested" in asked.text  # type: ignore[attr-defined]
    assert await store.published_texts() == {}
    colleague = await login("editor")
    page = (await colleague.get(path)).text
    assert "Approve version 1 and publish" in page
    approved = await _post(colleague, csrf, f"{path}/publish", approve="1", reason="checked")
    assert "Done: published" in approved.text  # type: ignore[attr-defined]
    assert await store.published_texts() == {"utter_handoff_rephrase": text}
    actions = [e.action for e in await console_app[AUDIT].recent()]
    for action in (
        "responses.approval.teams",
        "responses.publish.blocked",
        "responses.approval.request",
        "responses.publish",
    ):
        assert action in actions


@pytest.mark.browser
async def test_in_chromium_an_editor_changes_a_welsh_reply_by_keyboard_and_the_pages_are_axe_clean(
    browser: Browser, console_server: LocalServer, console_app: ConsoleApp, make_user: MakeUser
) -> None:
    user, password = await make_user("editor")
    context = await browser.new_context(viewport={"width": 320, "height": 640})
    page = await context.new_page()
    await page.goto(console_server.make_url("/editor/responses/?language=cy"))
    await fill_sign_in(page, user.username, password)
    await expect(page.get_by_role("heading", level=1)).to_have_text("Replies to residents")
    assert not (violations := await axe_violations(page)), describe(violations)
    await page.get_by_role("link", name="utter_thanks").focus()
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", level=1)).to_have_text("utter_thanks")
    await page.get_by_label("Text", exact=True).fill("Croeso. Oes rhywbeth arall?")
    await page.get_by_label("Why", exact=True).fill("byrrach")
    await page.get_by_role("button", name="Save draft").click()
    await expect(page.locator("#done")).to_contain_text("saved")
    await page.get_by_label("Why publish").fill("byrrach")
    await page.get_by_role("button", name="Publish").click()
    await expect(page.locator("#done")).to_contain_text("published")
    await expect(page.locator("#served")).to_have_text("Croeso. Oes rhywbeth arall?")
    assert await _store(console_app).published_texts() == {
        "utter_thanks.language-cy": "Croeso. Oes rhywbeth arall?"
    }
    assert await horizontal_overflow(page) == 0
    assert not (violations := await axe_violations(page)), describe(violations)
    await page.get_by_role("link", name="diff").click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Changes to")
    assert not (violations := await axe_violations(page)), describe(violations)
    await context.close()

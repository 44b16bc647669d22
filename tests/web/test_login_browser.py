import pytest
from playwright.async_api import Page, expect

from bot.testing.browser import LocalServer
from bot.testing.console import fill_sign_in


@pytest.mark.browser
async def test_log_in_see_home_log_out(console_server: LocalServer, make_user, page: Page) -> None:
    user, password = await make_user("admin")
    problems: list[str] = []
    # Chromium also logs non-2xx documents (the 401 re-shown form, no favicon): keep CSP ones.
    page.on(
        "console",
        lambda message: (
            problems.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    page.on("pageerror", lambda error: problems.append(str(error)))

    await page.goto(str(console_server.make_url("/")))
    await expect(page).to_have_url(str(console_server.make_url("/login?next=/")))
    await fill_sign_in(page, user.username, "not the password")
    await expect(page.get_by_role("alert")).to_have_text("The username or password is not right.")

    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(f"Welcome, {user.username}")
    await expect(page.get_by_role("navigation").get_by_role("link", name="Users")).to_be_visible()
    # The stylesheet loaded under the CSP (the header is dark, not the browser default).
    background = await page.locator("header").evaluate("e => getComputedStyle(e).backgroundColor")
    assert background == "rgb(11, 12, 12)"

    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    await page.goto(str(console_server.make_url("/")))
    await expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    assert problems == []

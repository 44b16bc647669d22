"""The "Done:" notice showed any text given in the URL.

The tester's report: ``/agent/cases/<id>?done=...`` printed whatever followed ``done=`` in a
green "Done:" box on the council's own page, so a link could show an agent or an editor a
convincing instruction ("Done: your account is suspended, call 0800 ..."). Escaping stopped
script, not the message.

Now ``done`` is a notice code from a fixed list; unknown codes show nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.handoff.queue import HandoffQueue
from bot.handoff.record import HandoffRecord
from bot.testing.console import Login, MakeUser
from bot.web.agent import QUEUE
from bot.web.app import ConsoleApp

PHISH = "your account is suspended, call 0800 000 0000"


@pytest.fixture
def console_sections() -> tuple[str, ...]:
    return ("bot.web.admin", "bot.web.agent")


async def _case(app: ConsoleApp) -> str:
    queue: HandoffQueue = app[QUEUE]
    record = HandoffRecord(
        conversation_id="telegram:councilbot:42",
        channel="telegram",
        account="councilbot",
        sender="42",
        reason="asked_for_person",
        topic="bin_day",
        priority="P2",
        team="customer_services",
        created_at=datetime.now(UTC).isoformat(),
    )
    return await queue.open(record)


async def test_pages_never_show_text_from_the_url(
    console_app: ConsoleApp, login: Login, make_user: MakeUser
) -> None:
    case_id = await _case(console_app)
    await make_user("agent", username="erin")
    admin = await login("admin")
    for path in (
        f"/agent/cases/{case_id}",
        "/agent/",
        "/agent/canned",
        "/admin/users",
        "/admin/users/erin",
    ):
        page = await admin.get(path, params={"done": PHISH})
        assert page.status_code == 200, path
        assert "0800" not in page.text and "suspended" not in page.text, path


async def test_known_codes_still_show_their_fixed_notice(
    console_app: ConsoleApp, login: Login
) -> None:
    case_id = await _case(console_app)
    agent = await login("agent", teams=("customer_services",))
    page = await agent.get(f"/agent/cases/{case_id}", params={"done": "returned-to-bot"})
    assert "Done: returned to bot." in page.text
    queue = await agent.get("/agent/", params={"done": "reassigned"})
    assert "Done: reassigned." in queue.text

"""Finding 9: the audit log missed refusals and report views.

The tester's report: failed sign-ins, every 403 (another team's case, a page the role may not
see), CSRF refusals and report page views left no trace in the audit log, so a supervisor
could not see someone probing the console.

Now every refusal is an entry with who (the user, or ``anonymous``), from which address, what
(the action and the path or object), when, and its outcome (``ok``, ``refused``, ``failed``):
``access.unauthenticated`` (no session: a page's redirect to sign-in or an API's 401),
``access.denied`` (403), ``csrf.refused``, ``login.failure`` and ``login.throttled``. Viewing
a report is ``report.view``. A supervisor filters the log page by actor, action, outcome and
date. Entries keep paths, never query strings or form text, so nothing a resident wrote is
stored.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from bot.handoff.queue import HandoffQueue
from bot.handoff.record import HandoffRecord
from bot.testing.console import FakeClock, Login, MakeUser
from bot.web.agent import QUEUE
from bot.web.app import AUDIT, ConsoleApp
from bot.web.audit import AuditEntry

SignIn = Callable[[httpx.AsyncClient, str, str], Awaitable[httpx.Response]]
RESIDENT_WORDS = "my neighbour at 12 Acacia Avenue"


@pytest.fixture
def console_sections() -> tuple[str, ...]:
    return ("bot.web.admin", "bot.web.agent", "bot.web.reports")


async def _entries(app: ConsoleApp, **filters: str) -> list[AuditEntry]:
    return await app[AUDIT].recent(limit=1000, **filters)


async def _open_case(app: ConsoleApp, team_topic: str = "council_tax_pay") -> str:
    queue: HandoffQueue = app[QUEUE]
    return await queue.open(
        HandoffRecord(
            conversation_id="telegram:councilbot:7",
            channel="telegram",
            account="councilbot",
            sender="7",
            reason="asked_for_person",
            topic=team_topic,
            priority="P2",
            team="revenues",
            created_at=datetime.now(UTC).isoformat(),
            transcript=[{"role": "resident", "text": RESIDENT_WORDS, "at": "2027-01-01"}],
        )
    )


async def test_not_signed_in_is_recorded(
    console_app: ConsoleApp, client: httpx.AsyncClient
) -> None:
    page = await client.get("/agent/", params={"q": RESIDENT_WORDS}, follow_redirects=False)
    assert page.status_code == 302
    api = await client.get("/api/agent/queue")
    assert api.status_code == 401
    entries = await _entries(console_app, action="access.unauthenticated")
    assert [(e.object_id, e.outcome) for e in entries] == [
        ("/api/agent/queue", "refused"),
        ("/agent/", "refused"),
    ]
    assert all(e.actor == "anonymous" and e.ip == "127.0.0.1" for e in entries)
    assert all(e.at.year >= 2027 for e in entries)  # the console's clock
    assert all(RESIDENT_WORDS not in repr(e) for e in await _entries(console_app))


async def test_forbidden_pages_and_other_teams_cases_are_recorded(
    console_app: ConsoleApp, login: Login
) -> None:
    case_id = await _open_case(console_app)
    agent = await login("agent", teams=("customer_services",), username="ann")
    assert (await agent.get(f"/agent/cases/{case_id}")).status_code == 403
    assert (await agent.get("/admin/users")).status_code == 403
    assert (await agent.get("/reports/export.json")).status_code == 403
    denied = await _entries(console_app, action="access.denied", actor="ann")
    assert {e.object_id for e in denied} == {
        f"/agent/cases/{case_id}",
        "/admin/users",
        "/reports/export.json",
    }
    assert all(e.outcome == "refused" and e.ip == "127.0.0.1" for e in denied)
    assert all(RESIDENT_WORDS not in repr(e) for e in await _entries(console_app))


async def test_csrf_refusals_are_recorded(console_app: ConsoleApp, login: Login) -> None:
    agent = await login("agent", teams=("customer_services",), username="bea")
    refused = await agent.post("/logout", data={"csrf_token": "forged"})
    assert refused.status_code == 403
    [entry] = await _entries(console_app, action="csrf.refused")
    assert (entry.actor, entry.object_id, entry.outcome) == ("bea", "/logout", "refused")


async def test_failed_and_throttled_sign_ins_are_recorded(
    console_app: ConsoleApp, client: httpx.AsyncClient, make_user: MakeUser, sign_in: SignIn
) -> None:
    user, _ = await make_user("agent")
    for _ in range(6):
        await sign_in(client, user.username, "not the password at all")
    entries = await _entries(console_app, actor=user.username)
    outcomes = {(e.action, e.outcome) for e in entries}
    assert ("login.failure", "failed") in outcomes and ("login.throttled", "refused") in outcomes
    assert all("not the password" not in repr(e) for e in entries)


async def test_report_views_are_recorded(console_app: ConsoleApp, login: Login) -> None:
    supervisor = await login("supervisor", username="sue")
    assert (await supervisor.get("/reports/", params={"days": "7"})).status_code == 200
    [entry] = await _entries(console_app, action="report.view")
    assert (entry.actor, entry.outcome, entry.detail) == ("sue", "ok", {"days": 7})


async def test_a_supervisor_filters_the_audit_log(
    console_app: ConsoleApp, login: Login, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await client.get("/agent/", follow_redirects=False)  # anonymous, refused, "today"
    clock.advance(3 * 86400)
    supervisor = await login("supervisor", username="sue")
    await supervisor.get("/admin/users")  # sue refused: admins only
    base = {"actor": "", "action": "", "outcome": "", "since": "", "until": ""}

    async def rows(**filters: str) -> str:
        page = await supervisor.get("/admin/audit", params=base | filters)
        assert page.status_code == 200
        return page.text.split("<tbody>")[1].split("</tbody>")[0]  # the entries, not the form

    everything = await rows()
    assert "access.denied" in everything and "access.unauthenticated" in everything
    assert "login.success" in everything
    refused = await rows(outcome="refused")
    assert "access.denied" in refused and "login.success" not in refused
    by_actor = await rows(actor="anonymous")
    assert "access.unauthenticated" in by_actor and "access.denied" not in by_actor
    by_action = await rows(action="login")  # a prefix: login.success, login.failure...
    assert "login.success" in by_action and "access.denied" not in by_action
    today = datetime.fromtimestamp(clock.now, UTC).date()
    recent = await rows(since=today.isoformat())
    assert "access.denied" in recent and "access.unauthenticated" not in recent
    older = await rows(until=(today - timedelta(days=1)).isoformat())
    assert "access.unauthenticated" in older and "access.denied" not in older
    bad = await supervisor.get("/admin/audit", params={"since": "yesterday"})
    assert bad.status_code == 400


async def test_the_audit_log_is_not_for_agents(login: Login) -> None:
    agent = await login("agent")
    assert (await agent.get("/admin/audit")).status_code == 403


async def test_a_flood_of_anonymous_refusals_cannot_fill_redis(
    console_app: ConsoleApp, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    for _ in range(100):
        await client.get("/api/agent/queue")
    entries = await _entries(console_app, actor="anonymous")
    assert [e.action for e in entries].count("access.unauthenticated") == 30
    [limited] = [e for e in entries if e.action == "audit.limited"]
    assert (limited.ip, limited.outcome) == ("127.0.0.1", "refused")
    clock.advance(60)  # a new minute: recorded again
    await client.get("/api/agent/queue")
    assert len(await _entries(console_app, action="access.unauthenticated")) == 31


async def test_a_throttled_guesser_cannot_fill_redis_either(
    console_app: ConsoleApp, client: httpx.AsyncClient, make_user: MakeUser, sign_in: SignIn
) -> None:
    user, _ = await make_user("agent")
    for _ in range(60):
        await sign_in(client, user.username, "not the password at all")
    entries = await _entries(console_app, actor=user.username)
    throttled = [e for e in entries if e.action == "login.throttled"]
    assert 0 < len(throttled) <= 30

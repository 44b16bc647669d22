import time

import redis.asyncio
from httpx import AsyncClient

from bot.web.app import AUDIT
from bot.web.audit import AuditLog


async def test_record_and_read_back(
    async_redis: redis.asyncio.Redis, namespace: str, clock
) -> None:
    log = AuditLog(async_redis, namespace, clock=clock)
    first = await log.record(
        "alice", "kb.publish", "kb_entry", "bins", {"version": 3}, ip="10.1.1.1"
    )
    await log.record("bob", "user.create", "user", "carol")
    assert await async_redis.xlen(f"{namespace}:audit") == 2
    entries = await log.recent()
    assert [e.action for e in entries] == ["user.create", "kb.publish"]
    oldest = entries[1]
    assert oldest.entry_id == first
    assert (oldest.actor, oldest.object_type, oldest.object_id, oldest.ip) == (
        "alice",
        "kb_entry",
        "bins",
        "10.1.1.1",
    )
    assert oldest.detail == {"version": 3}
    assert oldest.at.timestamp() == clock.now


async def test_filters(async_redis: redis.asyncio.Redis, namespace: str) -> None:
    log = AuditLog(async_redis, namespace)
    for n in range(600):  # more than one read batch
        await log.record("alice" if n % 2 else "bob", "x", "case", str(n % 3))
    assert len(await log.recent(limit=1000)) == 600
    assert len(await log.recent(limit=1000, actor="alice")) == 300
    only = await log.recent(limit=1000, actor="alice", object_type="case", object_id="0")
    assert len(only) == 100 and all(e.actor == "alice" and e.object_id == "0" for e in only)
    assert len(await log.recent(limit=5, actor="bob")) == 5
    assert await log.recent(object_type="user") == []
    newest_only = await log.recent(limit=1000, actor="alice", scan=10)
    assert len(newest_only) == 5


async def test_retention_trims_old_entries(
    async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    stream = f"{namespace}:audit"
    long_ago_ms = int((time.time() - 31 * 86400) * 1000)
    await async_redis.xadd(
        stream,
        {"at": "0", "actor": "a", "action": "old", "object_type": "u", "object_id": "a"},
        id=f"{long_ago_ms}-0",
    )
    recent_ms = int((time.time() - 29 * 86400) * 1000)
    await async_redis.xadd(
        stream,
        {"at": "0", "actor": "a", "action": "kept", "object_type": "u", "object_id": "a"},
        id=f"{recent_ms}-0",
    )
    log = AuditLog(async_redis, namespace, retention_days=30)
    await log.record("alice", "new", "user", "alice")
    assert [e.action for e in await log.recent()] == ["new", "kept"]


async def test_login_logout_and_failures_are_audited(
    client: AsyncClient, make_user, sign_in, csrf, console_app
) -> None:
    user, password = await make_user("agent")
    await sign_in(client, user.username, "wrong password")
    await sign_in(client, user.username, password)
    await client.post("/logout", data={"csrf_token": await csrf(client)})
    entries = await console_app[AUDIT].recent(object_type="user", object_id=user.username)
    assert [e.action for e in entries] == ["logout", "login.success", "login.failure"]
    assert all(e.actor == user.username and e.ip == "127.0.0.1" for e in entries)
    assert all(password not in str(e.detail) for e in entries)


async def test_audit_page_lists_and_filters(login, console_app) -> None:
    await console_app[AUDIT].record("dave", "kb.publish", "kb_entry", "<b>bins</b>")
    admin = await login("admin", username="root")
    page = await admin.get("/admin/audit")
    html = page.text
    assert page.status_code == 200
    assert "kb.publish" in html and "&lt;b&gt;bins&lt;/b&gt;" in html
    assert "login.success" in html
    filtered = (await admin.get("/admin/audit", params={"actor": "dave"})).text
    assert "kb.publish" in filtered and "login.success" not in filtered
    by_object = (
        await admin.get("/admin/audit", params={"object_type": "user", "object_id": "root"})
    ).text
    assert "login.success" in by_object and "kb.publish" not in by_object


async def test_audit_page_is_for_supervisors_and_admins(login) -> None:
    supervisor = await login("supervisor")
    assert (await supervisor.get("/admin/audit")).status_code == 200
    assert 'href="/admin/audit"' in (await supervisor.get("/")).text
    for role in ("agent", "editor"):
        other = await login(role)
        assert (await other.get("/admin/audit")).status_code == 403

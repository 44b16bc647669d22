import asyncio
import io
import json
import os
import subprocess
import sys

import pytest
import redis
from argon2 import PasswordHasher

from bot.web.accounts import LoginThrottle
from bot.web.users import main

GOOD = "a long admin password\n"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, redis_url: str, namespace: str) -> str:
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("COUNCIL_NAMESPACE", namespace)
    return namespace


def test_create_admin_from_stdin(env: str, redis_client: redis.Redis, capsys) -> None:
    status = main(
        ["create-admin", "Root", "--password-stdin"], stdin=io.StringIO("a long admin password\n")
    )
    assert status == 0
    assert "created root" in capsys.readouterr().out
    stored = redis_client.hgetall(f"{env}:user:root")
    assert stored["roles"] == "admin" and stored["disabled"] == "0"
    assert PasswordHasher().verify(stored["password_hash"], "a long admin password")
    [(_, entry)] = redis_client.xrange(f"{env}:audit")
    assert (entry["actor"], entry["action"], entry["object_id"]) == ("cli", "user.create", "root")
    assert json.loads(entry["detail"]) == {"roles": ["admin"], "teams": []}


def test_add_user_with_roles_and_teams(env: str, redis_client: redis.Redis) -> None:
    status = main(
        [
            "add-user",
            "ivan",
            "--role",
            "agent",
            "--role",
            "supervisor",
            "--team",
            "customer_services",
            "--password-stdin",
        ],
        stdin=io.StringIO("pale kettle orbit ninety\n"),
    )
    assert status == 0
    stored = redis_client.hgetall(f"{env}:user:ivan")
    assert stored["roles"] == "agent,supervisor" and stored["teams"] == "customer_services"


def test_refusals_exit_1(env: str, redis_client: redis.Redis, capsys) -> None:
    assert main(["create-admin", "root", "--password-stdin"], stdin=io.StringIO("short\n")) == 1
    assert "at least 12 characters" in capsys.readouterr().err
    assert not redis_client.exists(f"{env}:user:root")
    main(["create-admin", "root", "--password-stdin"], stdin=io.StringIO("a long admin password\n"))
    assert (
        main(
            ["create-admin", "root", "--password-stdin"],
            stdin=io.StringIO("another long password\n"),
        )
        == 1
    )
    assert "already exists" in capsys.readouterr().err


def test_prompt_passwords_must_match(env: str, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    answers = iter(["first long password", "second long password"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    assert main(["create-admin", "root"]) == 1
    assert "differ" in capsys.readouterr().err


def test_unknown_role_is_a_usage_error(env: str) -> None:
    with pytest.raises(SystemExit) as info:
        main(["add-user", "ivan", "--role", "root", "--password-stdin"], stdin=io.StringIO("x\n"))
    assert info.value.code == 2


def test_runs_as_a_module(env: str, redis_client: redis.Redis) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot.web.users", "create-admin", "judy", "--password-stdin"],
        input="quiet harbour lantern seven\n",
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert redis_client.hget(f"{env}:user:judy", "roles") == "admin"


async def test_unlock_from_the_command_line(
    env: str, redis_client: redis.Redis, async_redis
) -> None:
    created = await asyncio.to_thread(
        main, ["create-admin", "root", "--password-stdin"], stdin=io.StringIO(GOOD)
    )
    assert created == 0
    throttle = LoginThrottle(async_redis, env)
    for _ in range(9):
        await throttle.failure("root", "203.0.113.66")
    assert await throttle.locked("root", "198.51.100.10")
    assert await asyncio.to_thread(main, ["unlock", "Root"]) == 0
    assert not await throttle.locked("root", "198.51.100.10")
    *_, (_, entry) = redis_client.xrange(f"{env}:audit")
    assert (entry["actor"], entry["action"], entry["object_id"]) == ("cli", "user.unlock", "root")
    assert json.loads(entry["detail"]) == {"failures": 9}
    assert await asyncio.to_thread(main, ["unlock", "nobody"]) == 1


def test_add_user_with_a_display_name(env: str, redis_client: redis.Redis) -> None:
    argv = [
        "add-user",
        "sam.jones",
        "--role",
        "agent",
        "--display-name",
        " Sam ",
        "--password-stdin",
    ]
    assert main(argv, stdin=io.StringIO("pale kettle orbit ninety\n")) == 0
    assert redis_client.hget(f"{env}:user:sam.jones", "display_name") == "Sam"
    [(_, entry)] = redis_client.xrange(f"{env}:audit")
    assert json.loads(entry["detail"])["display_name"] == "Sam"


def test_a_bad_display_name_creates_nobody(env: str, redis_client: redis.Redis, capsys) -> None:
    argv = ["add-user", "sam.jones", "--role", "agent", "--display-name", "123", "--password-stdin"]
    assert main(argv, stdin=io.StringIO("pale kettle orbit ninety\n")) == 1
    assert "only digits" in capsys.readouterr().err
    assert not redis_client.exists(f"{env}:user:sam.jones")

"""Console accounts from the command line; the only way to create the first admin.

Usage::

    python -m bot.web.users create-admin <username> [--password-stdin]
    python -m bot.web.users add-user <username> --role agent [--role ...] [--team customer_services]
        [--display-name "Sam"]
    python -m bot.web.users unlock <username>

The password is asked for twice on the terminal, or read from the first line of standard input
with ``--password-stdin``. Redis comes from ``REDIS_URL`` (or ``--redis-url``), the namespace from
``COUNCIL_NAMESPACE`` (default ``cr``). ``unlock`` forgets a user's failed sign-ins (for an
administrator who cannot reach the console). ``--display-name`` is the name residents see in
the web chat (optional; see :func:`bot.web.accounts.check_display_name`). Every change is
audited with the actor ``cli``.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Sequence
from typing import TextIO

from bot.errors import AccountError, CouncilError
from bot.keys import namespace
from bot.redis_conn import connect_async, redis_url
from bot.web.accounts import ROLES, AccountStore, LoginThrottle, check_display_name
from bot.web.audit import AuditLog

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot.web.users", description=__doc__)
    parser.add_argument("--redis-url", help="Redis URL (default: REDIS_URL)")
    commands = parser.add_subparsers(dest="command", required=True)
    admin = commands.add_parser("create-admin", help="create a user with the admin role")
    admin.add_argument("username")
    admin.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    user = commands.add_parser("add-user", help="create a user with the given roles and teams")
    user.add_argument("username")
    user.add_argument("--role", action="append", choices=ROLES, required=True, dest="roles")
    user.add_argument("--team", action="append", default=[], dest="teams")
    user.add_argument("--display-name", default="", help="the name residents see in the web chat")
    user.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    unlock = commands.add_parser("unlock", help="forget a user's failed sign-ins")
    unlock.add_argument("username")
    return parser


def _password(username: str, from_stdin: bool, stdin: TextIO) -> str:
    if from_stdin:
        return stdin.readline().rstrip("\r\n")
    first = getpass.getpass(f"Password for {username}: ")
    if getpass.getpass("Again: ") != first:
        raise AccountError(username, "the two passwords differ")
    return first


async def _create(
    url: str,
    username: str,
    password: str,
    roles: list[str],
    teams: list[str],
    display_name: str = "",
) -> str:
    display_name = check_display_name(username, display_name)  # refused before anything is made
    client = await connect_async(url)
    try:
        ns = namespace()
        accounts = AccountStore(client, ns)
        user = await accounts.create(username, password, roles, teams)
        detail: dict[str, object] = {"roles": sorted(user.roles), "teams": list(user.teams)}
        if display_name:
            await accounts.set_display_name(user.username, display_name)
            detail["display_name"] = display_name
        await AuditLog(client, ns).record("cli", "user.create", "user", user.username, detail)
        return user.username
    finally:
        await client.close()


async def _unlock(url: str, username: str) -> int:
    client = await connect_async(url)
    try:
        ns = namespace()
        user = await AccountStore(client, ns).get(username)
        if user is None:
            raise AccountError(username, "no such user")
        username = user.username
        throttle = LoginThrottle(client, ns)
        failures = await throttle.failures(username)
        await throttle.unlock(username)
        detail = {"failures": failures}
        await AuditLog(client, ns).record("cli", "user.unlock", "user", username, detail)
        return failures
    finally:
        await client.close()


def main(argv: Sequence[str] | None = None, *, stdin: TextIO | None = None) -> int:
    """Run the command line; return the exit status (0 on success, 1 on a refused change)."""
    args = _parser().parse_args(argv)
    if args.command == "unlock":
        try:
            failures = asyncio.run(_unlock(args.redis_url or redis_url(), args.username))
        except CouncilError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"unlocked {args.username.strip().lower()} ({failures} recent failed sign-ins)")
        return 0
    admin = args.command == "create-admin"
    roles: list[str] = ["admin"] if admin else args.roles
    teams: list[str] = [] if admin else args.teams
    try:
        url = args.redis_url or redis_url()
        password = _password(args.username, args.password_stdin, stdin or sys.stdin)
        shown = "" if admin else args.display_name
        name = asyncio.run(_create(url, args.username, password, roles, teams, shown))
    except CouncilError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"created {name} with role(s) {', '.join(sorted(roles))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

from pathlib import Path

import pytest
from rasa.__main__ import create_argument_parser

from bot.services import rasa_server_argv


@pytest.mark.parametrize("token", ["-starts-with-a-dash", "plain_token", "--double"])
def test_rasa_reads_any_generated_auth_token(token: str) -> None:
    # secrets.token_urlsafe can start with "-": seen in CI as "rasa run: error: argument
    # -t/--auth-token: expected one argument", which stopped every e2e test of a module
    argv = rasa_server_argv(
        model=Path("m.tar.gz"),
        port=5005,
        credentials=Path("c.yml"),
        endpoints=Path("e.yml"),
        auth_token=token,
    )
    args = create_argument_parser().parse_args(argv[1:])
    assert args.auth_token == token

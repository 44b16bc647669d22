"""Finding 11: Rasa's unauthenticated REST channel was open on the public webhook port.

Anyone who could reach the residents' webhooks could post into any resident's conversation
by its id (``whatsapp:+44...:+447...``, phone numbers are guessable) and read the bot's
replies. Now production's ``credentials.yml`` opens no REST channel, the public edge never
serves one (nor any of Rasa's routes) whatever the credentials file says, and the Rasa server
and the action server listen only on an internal address.
"""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import psutil
import pytest
import redis.asyncio

from bot.channels.accounts import load_credentials
from bot.channels.registry import CHANNELS, configured
from bot.errors import ConfigError
from bot.services import (
    ROOT,
    action_server_argv,
    base_env,
    free_port,
    internal_host,
    rasa_server_argv,
    start_service,
)
from bot.testing.edge import serving

ATTACK = {"sender": "whatsapp:+441234567890:+447700900123", "message": "cancel my report"}


def test_production_credentials_open_no_rest_channel() -> None:
    production = load_credentials(ROOT / "credentials.yml")
    assert "rest" not in production
    assert set(production) <= {spec.section for spec in CHANNELS}  # channels only
    # The demo adds Rasa's REST channel (loopback only) and the web chat's workers, whose
    # resident-facing routes are the edge's, never Rasa's.
    no_webhook = {spec.section for spec in CHANNELS if not spec.webhook}
    assert set(load_credentials(ROOT / "credentials.demo.yml")) - no_webhook == {"rest"}


async def test_the_edge_serves_no_rest_channel_even_if_the_file_has_one(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    async_redis: redis.asyncio.Redis,
    namespace: str,
) -> None:
    credentials = tmp_path / "credentials.yml"
    credentials.write_text(
        "rest:\n"
        "bot.channels.rasa.TelegramInput:\n"
        "  accounts:\n"
        '    - {name: councilbot, token: "${F11_TOKEN}", secret_token: "${F11_SECRET}"}\n'
    )
    monkeypatch.setenv("F11_TOKEN", "1234:f11-token-value")
    monkeypatch.setenv("F11_SECRET", "f11_secret_token")
    channels = configured(credentials)
    assert [channel.spec.name for channel in channels] == ["telegram"]
    async with serving(channels, async_redis, namespace) as edge, aiohttp.ClientSession() as s:
        for path in ("/webhooks/rest/webhook", "/webhooks/rest/", "/webhooks/callback/webhook"):
            async with s.post(f"{edge}{path}", data=json.dumps(ATTACK)) as answer:
                assert answer.status == 404, path
                assert "bot" not in (await answer.text()).lower()  # no reply leaks out
        for path in ("/conversations/x/tracker/events", "/model/parse", "/status", "/version"):
            async with s.get(f"{edge}{path}") as answer:
                assert answer.status == 404, path
    assert await async_redis.xlen(f"{namespace}:inbox") == 0


def test_the_rasa_server_is_told_to_listen_on_the_internal_address_only() -> None:
    argv = rasa_server_argv(
        model=Path("m.tar.gz"),
        port=5005,
        credentials=Path("c.yml"),
        endpoints=Path("e.yml"),
        auth_token="t",
    )
    assert argv[argv.index("--interface") + 1] == "127.0.0.1"
    assert "--auth-token=t" in argv  # Rasa's HTTP API keeps its token
    assert base_env()["SANIC_HOST"] == "127.0.0.1"  # rasa-sdk's default is every interface


@pytest.mark.parametrize("value", ["0.0.0.0", "::", "8.8.8.8", "council.example.gov.uk"])
def test_a_public_or_wildcard_internal_address_is_refused(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("COUNCIL_INTERNAL_HOST", value)
    with pytest.raises(ConfigError) as caught:
        internal_host()
    assert caught.value.key == "COUNCIL_INTERNAL_HOST"


def test_a_private_network_address_is_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COUNCIL_INTERNAL_HOST", "10.20.0.5")
    assert internal_host() == "10.20.0.5"


def test_the_real_action_server_listens_on_loopback_only(tmp_path: Path) -> None:
    port = free_port()
    service = start_service(
        "actions",
        action_server_argv(port),
        ready_url=f"http://127.0.0.1:{port}/health",
        env=base_env(),
        log_dir=tmp_path,
    )
    try:
        process = psutil.Process(service.process.pid)
        listening = {
            (c.laddr.ip, c.laddr.port)
            for member in [*process.children(recursive=True), process]
            for c in member.net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN
        }
        assert listening == {("127.0.0.1", port)}
    finally:
        service.stop()

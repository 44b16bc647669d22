"""``make run`` shows the web chat: the sample council site, unless ``--no-sample-site``."""

from __future__ import annotations

import socket
import urllib.request
from dataclasses import replace
from pathlib import Path

from bot.profile import CouncilProfile
from bot.run import SAMPLE_SITE, _parse_args, sample_site_argv
from bot.services import ROOT, base_env, start_service
from bot.webchat.config import WebChatConfig

EDGE = "http://127.0.0.1:8000"


def _demo_webchat() -> WebChatConfig:
    webchat = CouncilProfile.load(ROOT / "council.yml").webchat
    assert webchat is not None
    return webchat


def test_the_sample_site_starts_unless_turned_off() -> None:
    assert _parse_args([]).no_sample_site is False
    assert _parse_args(["--no-sample-site"]).no_sample_site is True


def test_the_demo_profile_allows_the_sample_sites_origin() -> None:
    argv = sample_site_argv(_demo_webchat(), EDGE)
    assert argv is not None
    assert argv[1:] == [
        "-m",
        "bot.webchat.sample",
        "--edge",
        EDGE,
        "--council",
        "ashvale",
        "--port",
        SAMPLE_SITE.rsplit(":", 1)[1],
    ]


def test_no_sample_site_when_the_profile_would_refuse_its_widget() -> None:
    elsewhere = replace(_demo_webchat(), allowed_origins=("https://www.ashvale.gov.uk",))
    assert sample_site_argv(elsewhere, EDGE) is None
    assert sample_site_argv(None, EDGE) is None


def test_the_command_serves_a_page_embedding_the_edges_widget(tmp_path: Path) -> None:
    argv = sample_site_argv(_demo_webchat(), EDGE)
    assert argv is not None
    with socket.socket() as probe:  # the OS chooses a free port for the test's run
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    argv[argv.index("--port") + 1] = port
    url = f"http://127.0.0.1:{port}/"
    service = start_service("sample-site", argv, ready_url=url, env=base_env(), log_dir=tmp_path)
    try:
        with urllib.request.urlopen(url, timeout=10) as page:
            html = page.read().decode()
    finally:
        service.stop()
    assert f'src="{EDGE}/webchat/widget.js"' in html
    assert 'data-council="ashvale"' in html

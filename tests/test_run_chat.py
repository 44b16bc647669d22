"""The terminal chat of ``make chat`` against a stand-in of Rasa's REST channel.

Replies are in the REST channel's format (Rasa docs, "RESTInput": a JSON list of
``{"recipient_id", "text", "buttons": [{"title", "payload"}]}``).
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bot.run import chat

REPLIES: dict[str, list[dict[str, object]]] = {
    "when is my bin day": [{"recipient_id": "t", "text": "What's your postcode?"}],
    "AV1 2BX": [
        {
            "recipient_id": "t",
            "text": "There are 2 addresses at AV1 2BX. Which is yours?",
            "buttons": [
                {"title": "2 Mill Lane", "payload": "1"},
                {"title": "4 Mill Lane", "payload": "2"},
            ],
        }
    ],
    "a message the server cannot answer": [],
}


class _RestChannel(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        answer = json.dumps(REPLIES[body["message"]]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def rasa_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RestChannel)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _chat(rasa_url: str, lines: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(lines))
    chat(rasa_url)


def test_each_choice_is_shown_once(
    rasa_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _chat(rasa_url, "when is my bin day\nAV1 2BX\n/quit\n", monkeypatch)
    shown = capsys.readouterr().out
    assert "bot> What's your postcode?" in shown
    assert shown.count("2 Mill Lane") == 1 and shown.count("4 Mill Lane") == 1
    assert "1. 2 Mill Lane" in shown and "2. 4 Mill Lane" in shown


def test_no_reply_is_explained(
    rasa_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _chat(rasa_url, "a message the server cannot answer\n", monkeypatch)
    assert "bot> (no reply: the Rasa server's log, .data/logs/rasa.log, says why)" in (
        capsys.readouterr().out
    )

"""A pothole reported on Telegram, and one on WhatsApp, with a pin and a photo, end to end.

The real assistant behind the public edge (signed Telegram webhooks in; python-telegram-bot's
real client sending the replies to a fake Telegram API, which also serves the resident's
photo through ``getFile``), the action server fetching that photo with the bot's token
(``COUNCIL_CREDENTIALS``), and the back-office worker (``python -m bot.reports``) delivering
the report to the Open311 stand-in. The back office receives the pin, the answers and an
expiring address of the photo at the edge, which serves it without its GPS position.

On WhatsApp the same: webhooks signed as Twilio signs them (the ``twilio`` library's
``RequestValidator``), a location pin (``Latitude``/``Longitude``) and a photo
(``MediaUrl0``) that the Twilio stand-in serves only with the account's SID and auth token;
the real ``twilio`` client sends the replies, the reference among them.
"""

from __future__ import annotations

import io
import json
import secrets
import sys
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from PIL import ExifTags, Image
from twilio.request_validator import RequestValidator

from bot.reports.demo_places import GAZETTEER_FILE
from bot.reports.gazetteer import Gazetteer
from bot.services import base_env, edge_argv, free_port, start_service
from bot.settings import DEFAULT_PROFILE
from bot.testing.assistant import Assistant, running_assistant
from bot.testing.open311 import Open311StandIn, StandInThread
from bot.testing.providers import ProviderThread, Recorded

pytestmark = pytest.mark.e2e

TELEGRAM_TOKEN = "123456:e2e-reports-token"
TELEGRAM_SECRET = secrets.token_urlsafe(16)
NUMBER = "+441234567890"
TWILIO_SID = "AC00000000000000000000000000000001"
TWILIO_TOKEN = secrets.token_hex(16)
WEBHOOKS = Path(__file__).resolve().parents[1] / "data" / "webhooks"
RECORDED = WEBHOOKS / "telegram"
CREDENTIALS = """\
bot.channels.rasa.TelegramInput:
  api_base_url: "{url}"
  accounts:
    - name: "councilbot"
      token: "${{E2E_TELEGRAM_TOKEN}}"
      secret_token: "${{E2E_TELEGRAM_SECRET}}"
bot.channels.rasa.WhatsAppInput:
  api_base_url: "{url}"
  accounts:
    - number: "{number}"
      account_sid: "{sid}"
      auth_token: "${{E2E_TWILIO_AUTH_TOKEN}}"
"""
LIBRARY = Gazetteer.load(GAZETTEER_FILE).place("Ashvale Library").place
assert LIBRARY is not None
# WhatsApp's pothole is elsewhere: at the library, Telegram's report would be offered to join
SQUARE = Gazetteer.load(GAZETTEER_FILE).place("Market Square").place
assert SQUARE is not None


@pytest.fixture(scope="module")
def provider() -> Iterator[ProviderThread]:
    fake = ProviderThread().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def open311() -> Iterator[tuple[Open311StandIn, str]]:
    standin = Open311StandIn()
    thread = StandInThread(standin)
    url = thread.start()
    yield standin, url
    thread.stop()


@pytest.fixture(scope="module")
def assistant(
    redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    provider: ProviderThread,
    open311: tuple[Open311StandIn, str],
) -> Iterator[Assistant]:
    folder = tmp_path_factory.mktemp("reports")
    credentials = folder / "credentials.yml"
    credentials.write_text(CREDENTIALS.format(url=provider.url, number=NUMBER, sid=TWILIO_SID))
    profile = yaml.safe_load(DEFAULT_PROFILE.read_text())
    profile["reports"]["open311"]["endpoint"] = open311[1]
    profile["reports"]["photos"]["folder"] = str(folder / "media")
    holidays = profile["closed_days"]["bank_holidays"]  # relative to the profile's folder
    profile["closed_days"]["bank_holidays"] = str(DEFAULT_PROFILE.parent / holidays)
    (folder / "council.yml").write_text(yaml.safe_dump(profile, allow_unicode=True))
    edge_port = free_port()
    env = {
        "E2E_TELEGRAM_TOKEN": TELEGRAM_TOKEN,
        "E2E_TELEGRAM_SECRET": TELEGRAM_SECRET,
        "E2E_TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
        "COUNCIL_PROFILE": str(folder / "council.yml"),
        "COUNCIL_CREDENTIALS": str(credentials),
        "COUNCIL_MEDIA_KEY": secrets.token_urlsafe(32),
        "COUNCIL_MEDIA_URL": f"http://127.0.0.1:{edge_port}",
        "COUNCIL_OPEN311_API_KEY": "e2e-key",
    }
    namespace = f"{{e2erp{uuid.uuid4().hex[:10]}}}"
    with running_assistant(
        redis_url, namespace, folder, credentials=credentials, env=env
    ) as running:
        shared = base_env(**env, REDIS_URL=redis_url, COUNCIL_NAMESPACE=namespace)
        running.services["edge"] = start_service(
            "edge",
            edge_argv(host="127.0.0.1", port=edge_port, credentials=credentials),
            ready_url=f"http://127.0.0.1:{edge_port}/health",
            env=shared,
            log_dir=folder,
        )
        worker_port = free_port()
        running.services["reports"] = start_service(
            "reports",
            [sys.executable, "-m", "bot.reports", "--port", str(worker_port)],
            ready_url=f"http://127.0.0.1:{worker_port}/health",
            env=shared,
            log_dir=folder,
        )
        try:
            yield running
        finally:
            for name in ("reports", "edge"):
                running.services.pop(name).stop()
    client = redis.Redis.from_url(redis_url)
    for prefix in (f"{namespace}:", running.tracker_prefix):
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    client.close()


def gps_photo() -> bytes:
    """A phone photo carrying its GPS position and camera model."""
    exif = Image.Exif()
    exif[ExifTags.Base.Model] = "PhoneCam 9"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (52.0, 9.0, 58.4)
    out = io.BytesIO()
    Image.new("RGB", (120, 90), (70, 70, 70)).save(out, format="JPEG", exif=exif)
    return out.getvalue()


class TelegramResident:
    """A resident writing to the council's Telegram bot, through the edge."""

    def __init__(self, assistant: Assistant, provider: ProviderThread) -> None:
        self.edge = assistant.services["edge"].url.removesuffix("/health")
        self.provider = provider
        self.chat_id = 700_000_000 + secrets.randbelow(10**6)
        self.seen = 0

    def _mine(self, request: Recorded) -> bool:
        return request.path == f"/bot{TELEGRAM_TOKEN}/sendMessage" and str(
            request.fields().get("chat_id")
        ) == str(self.chat_id)

    def send(self, update_file: str, *, wait_for: str, **message: Any) -> str:
        """Post an update like a recorded one with ``message`` fields; return the replies
        once one contains ``wait_for``."""
        update = json.loads((RECORDED / update_file).read_text())
        update["update_id"] = secrets.randbelow(10**9)
        body = update["message"]
        body["message_id"] = secrets.randbelow(10**6)
        body["chat"]["id"] = body["from"]["id"] = self.chat_id
        for drop in ("text", "location", "photo", "caption"):
            body.pop(drop, None)
        body.update(message)
        request = urllib.request.Request(
            f"{self.edge}/webhooks/telegram/webhook",
            json.dumps(update).encode(),
            {
                "Content-Type": "application/json",
                "X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET,
            },
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert answer.status == 200
        texts: list[str] = []
        for count in range(self.seen + 1, self.seen + 12):
            sent = self.provider.wait_for(self._mine, count, timeout=120)
            texts = [str(r.fields().get("text")) for r in sent[self.seen :]]
            if any(wait_for in text for text in texts):
                self.seen = len(sent)
                return "\n".join(texts)
        raise AssertionError(f"{wait_for!r} not in {texts}")

    def says(self, text: str, *, wait_for: str) -> str:
        return self.send("text.json", wait_for=wait_for, text=text)


def test_a_pothole_with_a_pin_and_a_photo_reaches_the_back_office(
    assistant: Assistant, provider: ProviderThread, open311: tuple[Open311StandIn, str]
) -> None:
    standin, _ = open311
    resident = TelegramResident(assistant, provider)
    resident.says("pothole outside my house", wait_for="Where is it?")
    pin = {"latitude": LIBRARY.latitude, "longitude": LIBRARY.longitude}
    resident.send("location.json", wait_for="describe the problem", location=pin)
    resident.says("Deep, a cyclist nearly came off", wait_for="How big is the pothole?")
    resident.says("Larger than a dinner plate", wait_for="send a photo")

    file_id = provider.fake.telegram_file(TELEGRAM_TOKEN, gps_photo())
    photo = [{"file_id": file_id, "file_unique_id": "AQADx", "file_size": 900, "width": 120,
              "height": 90}]  # fmt: skip
    replies = resident.send("photo.json", wait_for="contact details", photo=photo)
    assert "I've got the photo" in replies
    summary = resident.says("no", wait_for="Shall I send it")
    assert "Where: Mill Lane, AV1 2BX" in summary and "Photo: yes" in summary
    resident.says("yes", wait_for="Your report has gone to")

    # the back-office worker delivers it; the council's reference comes back on Telegram
    resident.provider.wait_for(
        lambda r: resident._mine(r) and "Your reference is" in str(r.fields().get("text")),
        timeout=120,
    )
    [made] = [r for r in standin.requests.values() if "cyclist" in r.description]
    assert (made.lat, made.long) == (
        pytest.approx(LIBRARY.latitude),
        pytest.approx(LIBRARY.longitude),
    )
    assert made.service_code == "001" and made.attributes == {"size": "large"}
    assert made.contact == {} or not any(made.contact.values())  # the resident said no

    # the photo's address works, at the edge, and the photo carries no GPS or camera data
    assert made.media_url.startswith(resident.edge + "/media/")
    with urllib.request.urlopen(made.media_url, timeout=30) as answer:
        served = answer.read()
        assert answer.headers["Content-Type"] == "image/jpeg"
    image = Image.open(io.BytesIO(served))
    assert image.size == (120, 90) and not image.getexif() and b"PhoneCam" not in served


class WhatsAppResident:
    """A resident writing to the council's WhatsApp number, through the edge."""

    def __init__(self, assistant: Assistant, provider: ProviderThread) -> None:
        self.edge = assistant.services["edge"].url.removesuffix("/health")
        self.provider = provider
        self.number = f"+4477009{secrets.randbelow(10**5):05d}"
        self.seen = 0

    def mine(self, request: Recorded) -> bool:
        """A message the real ``twilio`` client sent this resident."""
        return (
            request.path.endswith("/Messages.json")
            and request.form().get("To") == f"whatsapp:{self.number}"
        )

    def send(self, recorded: str, *, wait_for: str, **fields: str) -> str:
        """Post a recorded Twilio webhook, re-addressed with ``fields`` and signed; return the
        replies once one contains ``wait_for``."""
        form = dict(urllib.parse.parse_qsl((WEBHOOKS / "twilio" / recorded).read_text().strip()))
        sid = f"SM{uuid.uuid4().hex}"
        form.update(
            MessageSid=sid, SmsSid=sid, SmsMessageSid=sid, AccountSid=TWILIO_SID,
            From=f"whatsapp:{self.number}", WaId=self.number.lstrip("+"),
            To=f"whatsapp:{NUMBER}", **fields,
        )  # fmt: skip
        url = f"{self.edge}/webhooks/whatsapp/webhook"
        request = urllib.request.Request(
            url,
            urllib.parse.urlencode(form).encode(),
            {
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": RequestValidator(TWILIO_TOKEN).compute_signature(url, form),
            },
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert answer.status == 200
        texts: list[str] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            sent = [r for r in list(self.provider.fake.requests) if self.mine(r)]
            texts = [r.form().get("Body", "") for r in sent[self.seen :]]
            if any(wait_for in text for text in texts):
                self.seen = len(sent)
                return "\n".join(texts)
            time.sleep(0.1)
        raise AssertionError(f"{wait_for!r} not in {texts}")

    def says(self, text: str, *, wait_for: str) -> str:
        return self.send("whatsapp_text.txt", wait_for=wait_for, Body=text)


def test_a_pothole_on_whatsapp_with_a_pin_and_a_photo_reaches_the_back_office(
    assistant: Assistant, provider: ProviderThread, open311: tuple[Open311StandIn, str]
) -> None:
    standin, _ = open311
    resident = WhatsAppResident(assistant, provider)
    resident.says("pothole outside my house", wait_for="Where is it?")
    pin = {"Latitude": repr(SQUARE.latitude), "Longitude": repr(SQUARE.longitude)}
    resident.send("whatsapp_location.txt", wait_for="describe the problem", **pin)
    resident.says("Deep, a bus swerved round it", wait_for="How big is the pothole?")
    resident.says("Larger than a dinner plate", wait_for="send a photo")

    # Twilio's MediaUrl0: the stand-in serves it only with the account's SID and auth token
    media_url = provider.fake.twilio_media(TWILIO_SID, TWILIO_TOKEN, gps_photo())
    replies = resident.send(
        "whatsapp_media.txt", wait_for="contact details", MediaUrl0=media_url, Body=""
    )
    assert "I've got the photo" in replies
    fetched = [r for r in provider.fake.requests if r.path == urllib.parse.urlparse(media_url).path]
    assert fetched and fetched[0].headers.get("Authorization", "").startswith("Basic ")
    summary = resident.says("no", wait_for="Shall I send it")
    assert "Where: High Street, AV2 7HN" in summary and "Photo: yes" in summary
    resident.says("yes", wait_for="Your report has gone to")

    # the back-office worker delivers it; the council's reference comes back on WhatsApp
    [told] = provider.wait_for(
        lambda r: resident.mine(r) and "Your reference is" in r.form().get("Body", ""),
        timeout=120,
    )
    [made] = [r for r in standin.requests.values() if "bus swerved" in r.description]
    assert f"Your reference is {made.service_request_id}." in told.form()["Body"]
    assert (made.lat, made.long) == (
        pytest.approx(SQUARE.latitude),
        pytest.approx(SQUARE.longitude),
    )
    assert made.service_code == "001" and made.attributes == {"size": "large"}
    assert made.media_url.startswith(resident.edge + "/media/")
    with urllib.request.urlopen(made.media_url, timeout=30) as answer:
        served = answer.read()
    image = Image.open(io.BytesIO(served))
    assert image.size == (120, 90) and not image.getexif() and b"PhoneCam" not in served

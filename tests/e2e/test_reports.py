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

Runs under the active council profile (``--profile``; default the demo): the report is placed
with that council's own gazetteer (``reports.gazetteer``) at two of its landmarks, and goes to
its back office: an Open311 council's to the Open311 stand-in; an e-mail council's (Glanfor) to
the SMTP stand-in (:mod:`bot.testing.smtp`) as the JSON the e-mail back office sends, whose
reference the resident is told.
"""

from __future__ import annotations

import asyncio
import io
import json
import secrets
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import yaml
from PIL import ExifTags, Image

from bot.profile import current
from bot.reports.config import ReportsConfig
from bot.reports.gazetteer import Place, gazetteer
from bot.services import base_env, free_port, start_service
from bot.testing.assistant import Assistant
from bot.testing.channels import WEBHOOKS, ChannelAccounts, behind_the_edge, edge_url
from bot.testing.open311 import Open311StandIn, StandInThread
from bot.testing.providers import ProviderThread, Recorded
from bot.testing.smtp import SmtpStandIn

pytestmark = pytest.mark.e2e

CHANNELS = ChannelAccounts()
RECORDED = WEBHOOKS / "telegram"
COUNCIL = current()  # the profile of this run (--profile; default the demo, council.yml)


def _reports() -> ReportsConfig:
    assert COUNCIL.reports is not None, f"{COUNCIL.path}: these tests need a reports section"
    return COUNCIL.reports


REPORTS = _reports()
OPEN311 = REPORTS.back_office == "open311"
# Two landmarks of each council's own gazetteer and the street their pin is summarised with.
# WhatsApp's pothole is elsewhere: at Telegram's place, its report would be offered to join.
SPOTS = {
    "Ashvale": (
        ("Ashvale Library", "Mill Lane, AV1 2BX"),
        ("Market Square", "High Street, AV2 7HN"),
    ),
    "Glanfor": (
        ("Glanfor Library", "Heol y Bont, GF1 1AA"),
        ("Glanfor Market Hall", "Stryd y Farchnad, GF1 4AB"),
    ),
}  # fmt: skip
assert COUNCIL.short_name in SPOTS, f"name two landmarks of {COUNCIL.short_name}'s gazetteer"
(_LIBRARY, LIBRARY_STREET), (_SQUARE, SQUARE_STREET) = SPOTS[COUNCIL.short_name]


def _landmark(name: str) -> Place:
    found = gazetteer(REPORTS.gazetteer).place(name).place
    assert found is not None and found.kind == "landmark", f"{name} not in {REPORTS.gazetteer}"
    return found


LIBRARY, SQUARE = _landmark(_LIBRARY), _landmark(_SQUARE)
# the category of the report: Open311's service list (the stand-in's), else the profile's
POTHOLE = "001" if OPEN311 else next(s.code for s in REPORTS.services if s.name == "Pothole")


@dataclass(frozen=True)
class Arrived:
    """A report as the council's back office received it."""

    reference: str
    description: str
    lat: float | None
    long: float | None
    service_code: str
    attributes: dict[str, Any]
    media_url: str
    contact_given: bool


class BackOfficeStandIn:
    """The active council's back office: the Open311 stand-in, or an SMTP stand-in for an
    e-mail council (on a thread with an event loop of its own)."""

    def __init__(self) -> None:
        self.open311 = Open311StandIn()
        self.smtp = SmtpStandIn()
        self._open311_thread = StandInThread(self.open311)
        self._loop: asyncio.AbstractEventLoop | None = None
        self.url = ""

    def start(self) -> BackOfficeStandIn:
        if OPEN311:
            self.url = self._open311_thread.start()
        else:
            self._loop = asyncio.new_event_loop()
            self._smtp_thread = threading.Thread(target=self._loop.run_forever, daemon=True)
            self._smtp_thread.start()
            asyncio.run_coroutine_threadsafe(self.smtp.__aenter__(), self._loop).result(10)
        return self

    def stop(self) -> None:
        if self._loop is None:
            self._open311_thread.stop()
        else:
            asyncio.run_coroutine_threadsafe(self.smtp.__aexit__(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._smtp_thread.join(10)
            self._loop.close()

    def point_profile_at_it(self, reports: dict[str, Any]) -> None:
        """Send the council's reports here (its profile's ``reports`` section, as read)."""
        if OPEN311:
            reports["open311"]["endpoint"] = self.url
        else:
            reports["email"].update(smtp_host="127.0.0.1", smtp_port=self.smtp.port)

    def received(self, words: str) -> Arrived:
        """The one report whose description has ``words``."""
        if OPEN311:
            [made] = [r for r in self.open311.requests.values() if words in r.description]
            given = made.contact != {} and any(made.contact.values())
            return Arrived(made.service_request_id, made.description, made.lat, made.long,
                           made.service_code, made.attributes, made.media_url, given)  # fmt: skip
        [mail] = [m for m in self.smtp.messages if words in _document(m)["description"]]
        document = _document(mail)
        return Arrived(document["reference"], document["description"], document["lat"],
                       document["long"], document["service_code"], document["attributes"],
                       document["media_url"], bool(document["contact"]))  # fmt: skip


def _document(mail: EmailMessage) -> dict[str, Any]:
    """The JSON of an e-mailed report, checked to be the same in the body and the attachment."""
    body = mail.get_body(("plain",))
    [attachment] = list(mail.iter_attachments())
    assert body is not None and attachment.get_content_type() == "application/json"
    document: dict[str, Any] = json.loads(body.get_content())
    assert json.loads(attachment.get_content()) == document
    assert (
        document["type"] == "problem_report" and mail["X-Council-Report"] == document["reference"]
    )
    return document


@pytest.fixture(scope="module")
def back_office() -> Iterator[BackOfficeStandIn]:
    standin = BackOfficeStandIn().start()
    yield standin
    standin.stop()


def council_profile(folder: Path, back_office: BackOfficeStandIn) -> Path:
    """The active profile, its files named by absolute paths, its reports sent to the stand-in
    and its photos kept in ``folder``."""
    source = Path(COUNCIL.path)
    profile = yaml.safe_load(source.read_text(encoding="utf-8"))
    reports = profile["reports"]
    back_office.point_profile_at_it(reports)
    # Photos in a local folder of the test's: a council's S3 bucket (Glanfor's) is covered by
    # tests/reports/test_photos.py with botocore's Stubber, not by a bucket stand-in here.
    reports["photos"].update(storage="local", folder=str(folder / "media"))
    reports["photos"].pop("s3", None)
    # the profile's own files are named relative to its folder
    reports["gazetteer"] = str(source.parent / reports["gazetteer"])
    holidays = profile["closed_days"]["bank_holidays"]
    profile["closed_days"]["bank_holidays"] = str(source.parent / holidays)
    path = folder / "council.yml"
    path.write_text(yaml.safe_dump(profile, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def assistant(
    redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    provider: ProviderThread,
    back_office: BackOfficeStandIn,
) -> Iterator[Assistant]:
    folder = tmp_path_factory.mktemp("reports")
    credentials = CHANNELS.write(folder / "credentials.yml", provider.url)
    profile = council_profile(folder, back_office)
    edge_port = free_port()
    env = {
        **CHANNELS.env(),
        "COUNCIL_PROFILE": str(profile),
        "COUNCIL_CREDENTIALS": str(credentials),
        "COUNCIL_MEDIA_KEY": secrets.token_urlsafe(32),
        "COUNCIL_MEDIA_URL": f"http://127.0.0.1:{edge_port}",
        "COUNCIL_OPEN311_API_KEY": "e2e-key",
    }
    namespace = f"{{e2erp{uuid.uuid4().hex[:10]}}}"
    with behind_the_edge(
        redis_url, namespace, folder, credentials, env, edge_port=edge_port
    ) as running:
        worker_port = free_port()
        running.services["reports"] = start_service(  # stopped first, before the edge
            "reports",
            [sys.executable, "-m", "bot.reports", "--port", str(worker_port)],
            ready_url=f"http://127.0.0.1:{worker_port}/health",
            env=base_env(**env, REDIS_URL=redis_url, COUNCIL_NAMESPACE=namespace),
            log_dir=folder,
        )
        yield running


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
        self.edge = edge_url(assistant)
        self.provider = provider
        self.chat_id = 700_000_000 + secrets.randbelow(10**6)
        self.seen = 0

    def _mine(self, request: Recorded) -> bool:
        return request.path == f"/bot{CHANNELS.telegram_token}/sendMessage" and str(
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
            CHANNELS.telegram_headers(),
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


def answer_the_questions(resident: TelegramResident | WhatsAppResident, description: str) -> None:
    """The description, then the category's own questions until the photo is asked for: the
    Open311 service definition's (the stand-in's pothole asks its size); an e-mail council's
    categories (the profile's list) have none."""
    if OPEN311:
        resident.says(description, wait_for="How big is the pothole?")
        resident.says("Larger than a dinner plate", wait_for="send a photo")
    else:
        resident.says(description, wait_for="send a photo")


def check_arrived(made: Arrived, at: Place, told: str) -> None:
    """The back office got the pin, the category and its answers, and the resident was told
    its reference."""
    assert f"Your reference is {made.reference}." in told
    assert pytest.approx((at.latitude, at.longitude)) == (made.lat, made.long)
    assert made.service_code == POTHOLE
    assert made.attributes == ({"size": "large"} if OPEN311 else {})
    assert not made.contact_given  # the resident said no


def check_photo(made: Arrived, edge: str) -> None:
    """The photo's address works, at the edge; it carries GPS and camera data only when the
    council keeps them (``reports.photos.keep_location``: the demo does not, Glanfor does)."""
    assert made.media_url.startswith(edge + "/media/")
    with urllib.request.urlopen(made.media_url, timeout=30) as answer:
        served = answer.read()
        assert answer.headers["Content-Type"] == "image/jpeg"
    image = Image.open(io.BytesIO(served))
    assert image.size == (120, 90)
    if REPORTS.photos.keep_location:
        assert served == gps_photo()
    else:
        assert not image.getexif() and b"PhoneCam" not in served


def test_a_pothole_with_a_pin_and_a_photo_reaches_the_back_office(
    assistant: Assistant, provider: ProviderThread, back_office: BackOfficeStandIn
) -> None:
    resident = TelegramResident(assistant, provider)
    resident.says("pothole outside my house", wait_for="Where is it?")
    pin = {"latitude": LIBRARY.latitude, "longitude": LIBRARY.longitude}
    resident.send("location.json", wait_for="describe the problem", location=pin)
    answer_the_questions(resident, "Deep, a cyclist nearly came off")

    file_id = provider.fake.telegram_file(CHANNELS.telegram_token, gps_photo())
    photo = [{"file_id": file_id, "file_unique_id": "AQADx", "file_size": 900, "width": 120,
              "height": 90}]  # fmt: skip
    replies = resident.send("photo.json", wait_for="contact details", photo=photo)
    assert "I've got the photo" in replies
    summary = resident.says("no", wait_for="Shall I send it")
    assert f"Where: {LIBRARY_STREET}" in summary and "Photo: yes" in summary
    resident.says("yes", wait_for="Your report has gone to")

    # the back-office worker delivers it; the council's reference comes back on Telegram
    [told] = resident.provider.wait_for(
        lambda r: resident._mine(r) and "Your reference is" in str(r.fields().get("text")),
        timeout=120,
    )
    made = back_office.received("cyclist")
    check_arrived(made, LIBRARY, str(told.fields().get("text")))
    check_photo(made, resident.edge)


class WhatsAppResident:
    """A resident writing to the council's WhatsApp number, through the edge."""

    def __init__(self, assistant: Assistant, provider: ProviderThread) -> None:
        self.edge = edge_url(assistant)
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
        form = CHANNELS.whatsapp_form(self.number, recorded, **fields)
        url = f"{self.edge}/webhooks/whatsapp/webhook"
        request = urllib.request.Request(
            url, urllib.parse.urlencode(form).encode(), CHANNELS.twilio_headers(url, form)
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
    assistant: Assistant, provider: ProviderThread, back_office: BackOfficeStandIn
) -> None:
    resident = WhatsAppResident(assistant, provider)
    resident.says("pothole outside my house", wait_for="Where is it?")
    pin = {"Latitude": repr(SQUARE.latitude), "Longitude": repr(SQUARE.longitude)}
    resident.send("whatsapp_location.txt", wait_for="describe the problem", **pin)
    answer_the_questions(resident, "Deep, a bus swerved round it")

    # Twilio's MediaUrl0: the stand-in serves it only with the account's SID and auth token
    media_url = provider.fake.twilio_media(CHANNELS.twilio_sid, CHANNELS.twilio_token, gps_photo())
    replies = resident.send(
        "whatsapp_media.txt", wait_for="contact details", MediaUrl0=media_url, Body=""
    )
    assert "I've got the photo" in replies
    fetched = [r for r in provider.fake.requests if r.path == urllib.parse.urlparse(media_url).path]
    assert fetched and fetched[0].headers.get("Authorization", "").startswith("Basic ")
    summary = resident.says("no", wait_for="Shall I send it")
    assert f"Where: {SQUARE_STREET}" in summary and "Photo: yes" in summary
    resident.says("yes", wait_for="Your report has gone to")

    # the back-office worker delivers it; the council's reference comes back on WhatsApp
    [told] = provider.wait_for(
        lambda r: resident.mine(r) and "Your reference is" in r.form().get("Body", ""),
        timeout=120,
    )
    made = back_office.received("bus swerved")
    check_arrived(made, SQUARE, told.form()["Body"])
    check_photo(made, resident.edge)


def test_an_emailed_report_names_the_council_and_the_map(back_office: BackOfficeStandIn) -> None:
    """An e-mail council's inbox gets each report from its own address, with a map link
    (runs after the residents' reports; an Open311 council has no inbox)."""
    if OPEN311:
        pytest.skip(f"{COUNCIL.short_name}'s back office is Open311, not e-mail")
    assert REPORTS.email is not None
    mails = [m for m in back_office.smtp.messages if "cyclist" in _document(m)["description"]]
    assert len(mails) == 1, "sent once"
    [mail] = mails
    assert (mail["To"], mail["From"]) == (REPORTS.email.to, REPORTS.email.sender)
    document = _document(mail)
    assert f"mlat={LIBRARY.latitude}" in document["map_url"]
    assert document["channel"] == "telegram" and document["service_name"] == "Pothole"

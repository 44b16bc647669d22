"""Reporting a problem in the chat: the form's actions, driven turn by turn as Rasa drives them,
against the Open311 stand-in (through the real client), real Redis, the demo gazetteer and a
fake Telegram API serving the resident's photo. What the resident reads is rendered from
responses/reports.yml as the Rasa server would."""

from __future__ import annotations

import copy
import functools
import io
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio
import yaml
from PIL import ExifTags, Image
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

import bot.testing.responses
from actions.reports import (
    ActionAskReportAnswer,
    ActionAskReportConfirm,
    ActionAskReportDuplicate,
    ActionAskReportService,
    ActionStartReport,
    ActionSubmitReport,
    ReportWorld,
    ValidateReportForm,
    answer_value,
    yes_or_no,
)
from bot.channels.telegram import TelegramAdapter, TelegramBotAccount
from bot.profile import current as council_profile
from bot.reports.demo_places import GAZETTEER_FILE
from bot.reports.gazetteer import Gazetteer
from bot.reports.media import MediaUrls
from bot.reports.open311 import Open311Client
from bot.reports.photos import LocalPhotoStore, PhotoIndex
from bot.reports.store import ReportStore
from bot.responses import load_responses
from bot.testing.open311 import Open311StandIn, serving
from bot.testing.providers import FakeProvider
from bot.testing.responses import rendered_messages

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = yaml.safe_load((ROOT / "responses" / "reports.yml").read_text())
FROM_TEXT = {
    name
    for name, slot in DOMAIN["slots"].items()
    if any(m["type"] == "from_text" for m in slot["mappings"])
}
ASK_ACTIONS = {
    "report_service": ActionAskReportService,
    "report_duplicate": ActionAskReportDuplicate,
    "report_answer": ActionAskReportAnswer,
    "report_confirm": ActionAskReportConfirm,
}
BOT = TelegramBotAccount("councilbot", "123456:AAE-forms-token", "secret_one")
KEY = "m" * 40
PLACES = Gazetteer.load(GAZETTEER_FILE)
LIBRARY = PLACES.place("Ashvale Library").place
assert LIBRARY is not None


def gps_photo() -> bytes:
    """A phone photo with its GPS position in EXIF."""
    exif = Image.Exif()
    exif[ExifTags.Base.Model] = "PhoneCam 9"
    exif.get_ifd(ExifTags.IFD.GPSInfo)[ExifTags.GPS.GPSLatitudeRef] = "N"
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (90, 90, 90)).save(out, format="JPEG", exif=exif)
    return out.getvalue()


@dataclass
class Resident:
    """One resident talking to the form, turn by turn, as the Rasa server runs it."""

    world: ReportWorld
    sender: str = "telegram:councilbot:424242"
    channel: str = "telegram"
    slots: dict[str, Any] = field(default_factory=dict)
    requested: str | None = None
    active: bool = False
    read: list[dict[str, Any]] = field(default_factory=list)

    def _tracker(
        self, text: str, intent: str, metadata: Mapping[str, Any], new: dict[str, Any]
    ) -> Tracker:
        user = {"event": "user", "text": text, "input_channel": self.channel, "parse_data": {}}
        return Tracker(
            sender_id=self.sender,
            slots={**self.slots, **new, "requested_slot": self.requested},
            latest_message={
                "text": text,
                "intent": {"name": intent},
                "entities": [],
                "metadata": dict(metadata),
            },
            events=[user, *({"event": "slot", "name": k, "value": v} for k, v in new.items())],
            paused=False,
            followup_action=None,
            active_loop={"name": "report_form"} if self.active else {},
            latest_action_name="action_listen",
        )

    def _apply(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            if event["event"] == "slot":
                if event["name"] == "requested_slot":
                    self.requested = event["value"]
                else:
                    self.slots[event["name"]] = event["value"]

    async def _run(self, action: Any, tracker: Tracker) -> list[dict[str, Any]]:
        dispatcher = CollectingDispatcher()
        events = await action.run(dispatcher, tracker, DOMAIN)
        self._apply(events)
        self.read += rendered_messages(dispatcher.messages, self.channel, slots=self.slots)
        return events

    async def _validate(self, tracker: Tracker) -> None:
        events = await self._run(ValidateReportForm(self.world), tracker)
        if not any(e["event"] == "slot" and e["name"] == "requested_slot" for e in events):
            # the validation action left it to Rasa's form, which asks the first empty slot
            required = DOMAIN["forms"]["report_form"]["required_slots"]
            self.requested = next((s for s in required if self.slots.get(s) is None), None)

    async def _next(self, tracker: Tracker) -> None:
        if self.requested is None:
            self.active = False
            last = tracker.latest_message
            ended = self._tracker(last["text"], last["intent"]["name"], last["metadata"], {})
            await self._run(ActionSubmitReport(self.world), ended)
            return
        ask = ASK_ACTIONS.get(self.requested)
        if ask is not None:
            await self._run(ask(self.world) if ask is ActionAskReportService else ask(), tracker)
        else:
            self.read += rendered_messages(
                [{"response": f"utter_ask_{self.requested}"}], self.channel, slots=self.slots
            )

    async def report(self, intent: str) -> list[dict[str, Any]]:
        """The resident asks to report something (``report_pothole``...)."""
        self.read = []
        started = await self._run(ActionStartReport(self.world), self._tracker("", intent, {}, {}))
        if not self.slots.get("report_available"):
            return self.read
        self.active, self.requested = True, None
        # the form starts with the start action's slot events last on the tracker
        set_now = {e["name"]: e["value"] for e in started if e["event"] == "slot"}
        tracker = self._tracker("", intent, {}, set_now)
        await self._validate(tracker)
        await self._next(tracker)
        return self.read

    async def says(
        self,
        text: str = "",
        *,
        intent: str = "inform",
        location: tuple[float, float] | None = None,
        attachments: list[dict[str, str]] | None = None,
    ) -> list[dict[str, Any]]:
        """The resident answers; returns what the bot says back."""
        self.read = []
        metadata: dict[str, Any] = {"account": "councilbot", "display_name": "Priya Shah"}
        if location:
            metadata["location"] = {"latitude": location[0], "longitude": location[1], "label": ""}
        if attachments:
            metadata["attachments"] = attachments
        ignored = intent in {"human_agent", "safeguarding", "complaint", "out_of_scope"}
        new = {self.requested: text} if self.requested in FROM_TEXT and not ignored else {}
        tracker = self._tracker(text, intent, metadata, new)
        await self._validate(tracker)
        await self._next(tracker)
        return self.read

    def texts(self) -> str:
        return "\n".join(str(m.get("text") or "") for m in self.read)

    def buttons(self) -> list[str]:
        return [str(b["title"]) for m in self.read for b in m.get("buttons") or []]


@dataclass
class Council:
    """The back office, the resident's channel and where reports end up."""

    standin: Open311StandIn
    telegram: FakeProvider
    world: ReportWorld
    redis: redis.asyncio.Redis
    namespace: str
    media: Path

    def resident(self, **kwargs: Any) -> Resident:
        return Resident(self.world, **kwargs)

    async def queued(self, resident: Resident) -> list[Any]:
        store = ReportStore(self.redis, self.namespace)
        ids = await store.conversation_reports(resident.sender)
        return [(await store.get(i)).report for i in ids]  # type: ignore[union-attr]


@pytest.fixture(autouse=True)
def responses_read_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The responses files are read once for the module, not for every message rendered."""
    monkeypatch.setattr(bot.testing.responses, "load_responses", _RESPONSES)


_RESPONSES = functools.cache(load_responses)


@pytest.fixture
async def council(
    async_redis: redis.asyncio.Redis, namespace: str, tmp_path: Path
) -> AsyncIterator[Council]:
    standin = Open311StandIn()
    telegram = await FakeProvider().start()
    adapter = TelegramAdapter([BOT], api_base_url=telegram.url, timeout=2.0)
    async with serving(standin) as endpoint:
        client = Open311Client(endpoint, redis=async_redis, namespace=namespace)
        world = ReportWorld(
            council_profile().reports,
            back_office=client,
            places=PLACES,
            adapters={"telegram": adapter},
            store=LocalPhotoStore(tmp_path / "media"),
            urls=MediaUrls(KEY, "https://chat.ashvale.example", 72 * 3600),
            client=async_redis,
            key_namespace=namespace,
        )
        yield Council(standin, telegram, world, async_redis, namespace, tmp_path / "media")
        await client.aclose()
    await adapter.aclose()
    await telegram.stop()


async def test_a_pothole_with_a_pin_and_a_photo_reaches_the_outbox(council: Council) -> None:
    resident = council.resident()
    await resident.report("report_pothole")
    assert [m["text"] for m in resident.read] == [  # the question, and nothing else
        "Where is it? Send a location pin, or tell me the postcode, the street or a landmark "
        "nearby."
    ]

    await resident.says(location=(LIBRARY.latitude, LIBRARY.longitude))
    assert "describe the problem" in resident.texts()

    await resident.says("It's deep and a cyclist nearly came off")
    assert "How big is the pothole?" in resident.texts()
    assert resident.buttons() == ["Smaller than a dinner plate", "Larger than a dinner plate"]

    await resident.says("Larger than a dinner plate")
    assert "send a photo" in resident.texts() and resident.buttons() == ["Skip"]

    file_id = council.telegram.telegram_file(BOT.token, gps_photo())
    photo = {"kind": "image", "url": f"tg-file:{file_id}", "content_type": "image/jpeg"}
    await resident.says("", intent="attachment", attachments=[photo])
    assert "I've got the photo" in resident.texts()
    assert "contact details" in resident.texts()

    await resident.says("no")
    summary = resident.texts()
    assert "Problem: Pothole" in summary and "Where: Mill Lane, AV1 2BX" in summary
    assert "Details: It's deep and a cyclist nearly came off; Larger than a dinner plate" in summary
    assert "Photo: yes" in summary and "contact details: not shared" in summary
    assert resident.buttons() == ["Send it", "Change something", "Cancel"]

    assert await council.queued(resident) == []  # nothing goes before the resident says so
    await resident.says("yes")
    assert "Your report has gone to Ashvale Borough Council" in resident.texts()
    assert not resident.active and not any(resident.slots.get(n) for n in ("report_photo",))

    [report] = await council.queued(resident)
    assert (report.service_code, report.service_name) == ("001", "Pothole")
    assert (report.lat, report.long) == (LIBRARY.latitude, LIBRARY.longitude)
    assert report.address_string == "Mill Lane, AV1 2BX"
    assert report.attributes == {"size": "large"}
    assert report.contact is None  # the resident said no
    assert (report.channel, report.account, report.sender) == ("telegram", "councilbot", "424242")
    # the back office gets an expiring address of the cleaned photo
    token = report.media_url.removeprefix("https://chat.ashvale.example/media/")
    name = council.world.media_urls().verify(token)  # type: ignore[union-attr]
    stored = (council.media / str(name)).read_bytes()
    assert b"PhoneCam" not in stored and not Image.open(io.BytesIO(stored)).getexif()
    [held] = await PhotoIndex(council.redis, council.namespace).of(resident.sender)
    assert held["name"] == name and held["submitted"] == "1"


async def test_fly_tipping_in_words_asks_what_and_how_much_and_shares_contact(
    council: Council,
) -> None:
    resident = council.resident(sender="whatsapp:+441234567890:+447700900123", channel="whatsapp")
    await resident.report("report_fly_tipping")
    await resident.says("behind St Mary's church")
    await resident.says("bags and an old mattress by the wall")
    assert "What kind of waste is it?" in resident.texts()
    await resident.says("1")
    assert "How much is there?" in resident.texts()
    await resident.says("a van load or more")
    await resident.says("skip")
    assert "contact details" in resident.texts()
    await resident.says("yes please")
    assert "Your contact details: shared" in resident.texts() and "Photo: none" in resident.texts()
    await resident.says("Send it")
    [report] = await council.queued(resident)
    assert report.attributes == {"waste_type": "household", "amount": "van"}
    assert report.address_string == "St Mary's Church, Church Lane, AV5 1QA"
    assert report.contact is not None and report.contact.phone == "+447700900123"
    assert (report.contact.first_name, report.contact.last_name) == ("Priya", "Shah")
    assert report.media_url == ""


async def test_a_question_with_several_answers_takes_several_and_posts_them_all(
    council: Council,
) -> None:
    definition = copy.deepcopy(council.standin.definitions["003"])
    definition["attributes"][0]["datatype"] = "multivaluelist"
    council.standin.definitions["003"] = definition
    resident = council.resident()
    await resident.report("report_fly_tipping")
    await resident.says("behind St Mary's church")
    await resident.says("bags, a sofa and garden cuttings")
    assert "What kind of waste is it?" in resident.texts()
    assert "more than one" in resident.texts()  # the resident is told they can pick several
    await resident.says("1 and garden waste")
    await resident.says("a car boot load")
    await resident.says("skip")
    await resident.says("no")
    assert "Household rubbish, Garden waste; A car boot load" in resident.texts()
    await resident.says("Send it")
    [report] = await council.queued(resident)
    assert report.attributes == {"waste_type": ["household", "garden"], "amount": "car"}
    sent = await council.world.back_office()
    assert sent is not None
    submitted = await sent.submit(report)
    stored = council.standin.requests[str(submitted.service_request_id)]
    assert stored.attributes["waste_type"] == ["household", "garden"]


async def test_report_a_problem_offers_the_back_offices_categories(council: Council) -> None:
    resident = council.resident()
    await resident.report("report_problem")
    assert resident.texts() == "What would you like to report? Choose the kind of problem."
    assert resident.buttons() == ["Pothole", "Street light not working", "Fly-tipping"]
    await resident.says("something else entirely")
    assert "couldn't match that" in resident.texts()
    await resident.says("2")
    assert "Send a location pin" in resident.texts()
    await resident.says("4 Mill Lane AV1 2BX")
    await resident.says("flickering all night")
    assert "What is the number on the lamp post? (or say 'skip')" in resident.texts()
    await resident.says("skip")  # optional: skipped
    await resident.says("skip")  # no photo
    await resident.says("no")
    await resident.says("yes")
    [report] = await council.queued(resident)
    assert report.service_code == "002" and report.attributes == {}
    assert report.address_string == "4 Mill Lane, AV1 2BX"


async def test_someone_elses_report_nearby_is_offered_and_joined(council: Council) -> None:
    days_ago = council.world.clock() - 2 * 86_400 - 60
    earlier = council.standin.add_request(
        "001", LIBRARY.latitude + 0.0002, LIBRARY.longitude, requested_at=days_ago
    )
    resident = council.resident()
    await resident.report("report_pothole")
    await resident.says(location=(LIBRARY.latitude, LIBRARY.longitude))
    assert "Someone reported this 22 metres away 2 days ago" in resident.texts()
    assert resident.buttons() == ["Yes, add me", "No, it's a different problem"]
    await resident.says("Yes, add me")
    assert "I've added you to that report" in resident.texts()
    assert not resident.active and await council.queued(resident) == []
    [subscriber] = await ReportStore(council.redis, council.namespace).subscribers(
        earlier.service_request_id
    )
    assert subscriber.conversation_id == resident.sender and subscriber.service_name == "Pothole"


async def test_a_pin_is_an_answer_whatever_the_empty_text_was_classified_as(
    council: Council,
) -> None:
    resident = council.resident()
    await resident.report("report_pothole")
    await resident.says(intent="greet", location=(LIBRARY.latitude, LIBRARY.longitude))
    assert resident.slots["report_location"] == "Mill Lane, AV1 2BX"
    await resident.says("deep")
    await resident.says("1")
    assert resident.requested == "report_photo"
    await resident.says("please help, he hits me", intent="safeguarding")
    assert resident.requested == "report_photo" and resident.slots["report_photo"] is None
    assert "I didn't get a photo" not in resident.texts()  # left to the safeguarding rule


async def test_a_different_problem_nearby_goes_on_as_a_new_report(council: Council) -> None:
    council.standin.add_request("001", LIBRARY.latitude, LIBRARY.longitude)
    resident = council.resident()
    await resident.report("report_pothole")
    await resident.says(location=(LIBRARY.latitude, LIBRARY.longitude))
    assert "earlier today" in resident.texts()
    await resident.says("maybe")
    assert "answer yes or no" in resident.texts()
    await resident.says("No, it's a different problem")
    assert "describe the problem" in resident.texts()


@pytest.mark.parametrize(
    ("where", "says"),
    [
        ({"text": "BK1 4RT"}, "That's in Brackwell District Council's area, not Ashvale"),
        ({"location": (52.30, -1.5)}, "That's in Brackwell District Council's area"),
        ({"text": "SW1A 1AA"}, "I couldn't find that place in Ashvale"),
        ({"location": (50.2, -3.9)}, "may have landed in the sea"),
        ({"text": "near the big oak tree"}, "I couldn't find that place"),
        ({"text": "Mill Lane"}, "streets called Mill Lane in Ashvale"),
    ],
)
async def test_places_that_cannot_be_reported_here_are_explained(
    council: Council, where: dict[str, Any], says: str
) -> None:
    resident = council.resident()
    await resident.report("report_pothole")
    await resident.says(where.get("text", ""), location=where.get("location"))
    assert says in resident.texts()
    assert resident.requested == "report_location"  # asked again, nothing placed
    assert "Send a location pin" in resident.texts()


async def test_a_street_several_parts_of_the_borough_share_offers_each(council: Council) -> None:
    resident = council.resident()
    await resident.report("report_pothole")
    await resident.says("Mill Lane")
    choices = resident.buttons()
    assert len(choices) > 1 and all(c.startswith("Mill Lane, AV") for c in choices)
    await resident.says(choices[0])
    assert resident.slots["report_location"] == choices[0]


@pytest.mark.parametrize(
    ("photo", "says"),
    [
        (b"\xff\xd8\xff" + bytes(11_000_000), "too big for me to accept (the limit is 10 MB)"),
        (b"%PDF-1.7 a council tax bill", "isn't a photo I can use"),
    ],
)
async def test_a_huge_file_or_not_a_photo_is_explained_and_the_form_goes_on(
    council: Council, photo: bytes, says: str
) -> None:
    resident = council.resident()
    await resident.report("report_street_light")
    await resident.says("Station Road AV2 9LQ")
    await resident.says("out for a week")
    await resident.says("skip")
    file_id = council.telegram.telegram_file(BOT.token, photo)
    sent = {"kind": "image", "url": f"tg-file:{file_id}", "content_type": "image/jpeg"}
    await resident.says("", intent="attachment", attachments=[sent])
    assert says in resident.texts()
    assert "contact details" in resident.texts()  # the next question: no photo
    assert resident.slots["report_photo"] == "none"
    assert not council.media.exists() or not list(council.media.iterdir())


async def test_a_photo_step_without_a_photo_asks_again(council: Council) -> None:
    resident = council.resident()
    await resident.report("report_street_light")
    await resident.says("Station Road AV2 9LQ")
    await resident.says("out for a week")
    await resident.says("12")
    await resident.says("here you go")
    assert "I didn't get a photo" in resident.texts() and resident.requested == "report_photo"


async def test_cancel_sends_nothing_and_removes_the_photo(council: Council) -> None:
    resident = council.resident()
    await resident.report("report_pothole")
    await resident.says("outside 4 Mill Lane AV1 2BX")
    await resident.says("huge")
    await resident.says("2")
    file_id = council.telegram.telegram_file(BOT.token, gps_photo())
    sent = {"kind": "image", "url": f"tg-file:{file_id}", "content_type": "image/jpeg"}
    await resident.says("", intent="attachment", attachments=[sent])
    await resident.says("no")
    await resident.says("Cancel")
    assert "cancelled that report. Nothing has been sent" in resident.texts()
    assert await council.queued(resident) == []
    assert await PhotoIndex(council.redis, council.namespace).of(resident.sender) == []
    assert list(council.media.iterdir()) == []


async def test_cancel_at_any_question_ends_the_report(council: Council) -> None:
    resident = council.resident()
    await resident.report("report_fly_tipping")
    await resident.says("Foundry Row car park")
    await resident.says("stop")
    assert "cancelled that report. Nothing has been sent" in resident.texts()
    assert not resident.active and resident.slots["report_description"] is None
    assert await council.queued(resident) == []


async def test_change_goes_through_it_again_keeping_the_kind_of_problem(council: Council) -> None:
    resident = council.resident()
    await resident.report("report_pothole")
    for answer in ("4 Mill Lane AV1 2BX", "deep", "1", "skip", "no"):
        await resident.says(answer)
    await resident.says("Change something")
    assert "go through it again" in resident.texts() and "Send a location pin" in resident.texts()
    for answer in ("Ashvale Library", "deeper than I said", "2", "skip", "no"):
        await resident.says(answer)
    assert "Where: Ashvale Library, Mill Lane, AV1 2BX" in resident.texts()
    assert "Details: deeper than I said; Larger than a dinner plate" in resident.texts()
    await resident.says("yes")
    [report] = await council.queued(resident)
    assert report.attributes == {"size": "large"}


async def test_without_a_back_office_the_web_form_answers(council: Council) -> None:
    council.standin.faults.status = 503
    resident = council.resident()
    await resident.report("report_pothole")
    assert resident.slots["report_available"] is False  # rules_reports.yml: action_answer


async def test_a_back_office_without_definitions_still_takes_the_description(
    council: Council,
) -> None:
    council.standin.definitions.clear()
    resident = council.resident()
    await resident.report("report_fly_tipping")
    await resident.says("Foundry Row car park")
    await resident.says("a fridge")
    assert "send a photo" in resident.texts()  # no questions to ask


async def test_a_welsh_conversation_is_asked_in_welsh(council: Council) -> None:
    resident = council.resident()
    resident.slots["language"] = "cy"
    await resident.report("report_pothole")
    assert "Ble mae e? Anfonwch bin lleoliad" in resident.texts()
    await resident.says(location=(50.2, -3.9))
    assert "Dydy'r pin hwnnw ddim yn agos" in resident.texts()


@pytest.mark.parametrize(
    ("text", "intent", "expected"),
    [("yes please", "", "yes"), ("Ie", "", "yes"), ("nope", "", "no"), ("", "deny", "no"),
     ("maybe", "", None)],
)  # fmt: skip
def test_yes_or_no(text: str, intent: str, expected: str | None) -> None:
    assert yes_or_no(text, intent) == expected


def test_answers_to_list_questions() -> None:
    question = {"datatype": "multivaluelist", "values": [["a", "Apples"], ["b", "Bananas"]]}
    assert answer_value(question, "apples, 2") == "a,b"
    assert answer_value(question, "1 and bananas") == "a,b"
    assert answer_value(question, "apples a 2") == "a,b"  # Welsh "a" (and)
    assert answer_value(question, "2, 2 and 1") == "b,a"  # each once, in the order given
    assert answer_value(question, "cherries") is None
    assert answer_value({"datatype": "number"}, "12") == "12"
    assert answer_value({"datatype": "number"}, "twelve") is None


def test_every_report_response_renders_on_every_channel() -> None:
    for name in DOMAIN["responses"]:
        for channel in ("whatsapp", "sms", "telegram", "messenger"):
            values = {
                "count": 2, "street": "Mill Lane", "council": "Brackwell District Council",
                "known": "yes", "metres": 20, "days": 2, "ago": "days", "limit": 1000,
                "question": "How big?", "optional": "no", "max_mb": 10, "service_name": "Pothole",
                "where": "Mill Lane", "details": "deep", "photo": "yes", "contact": "no",
            }  # fmt: skip
            for slots in ({}, {"language": "cy"}):
                [message] = rendered_messages([{"response": name, **values}], channel, slots=slots)
                assert message["text"]


def test_the_form_asks_for_every_slot_it_needs() -> None:
    for slot in DOMAIN["forms"]["report_form"]["required_slots"]:
        asked_by = {f"utter_ask_{slot}", f"action_ask_{slot}"}
        assert asked_by & (set(DOMAIN["responses"]) | set(DOMAIN["actions"])), slot

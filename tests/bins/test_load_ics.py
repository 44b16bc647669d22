"""Loading iCalendar feeds into Redis, then answering from them as the action server does."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
import redis
import redis.asyncio
from rasa_sdk.executor import CollectingDispatcher

from actions.bins import ActionBinCollectionDay, ValidateBinDayForm, ValidateMissedBinForm
from bot.bins.ics import IcsScheduleSource
from bot.bins.load import load_feeds, main
from bot.bins.schedule import RoundScheduleSource
from bot.bins.store import BinStore, PostcodeStatus

from .conftest import DEMO_PATHS
from .test_actions import DOMAIN, texts, tracker

_, DEMO_ROUNDS, DEMO_HOLIDAYS = DEMO_PATHS


def _ics(*lines: str) -> str:
    return "\r\n".join(["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Test//Waste//EN", *lines])


# Monday general waste and recycling, alternate weeks; the bank holiday on Monday 28 December
# 2026 moves general waste to Tuesday (EXDATE + RDATE). Food every Tuesday (a timed DTSTART).
MONDAY = _ics(
    "BEGIN:VEVENT",
    "UID:grey-100001@example",
    "DTSTART;VALUE=DATE:20261130",
    "RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=MO",
    "EXDATE;VALUE=DATE:20261228",
    "RDATE;VALUE=DATE:20261229",
    "SUMMARY:Grey bin (general waste)",
    "END:VEVENT",
    "BEGIN:VEVENT",
    "UID:blue-100001@example",
    "DTSTART;VALUE=DATE:20261207",
    "RRULE:FREQ=WEEKLY;INTERVAL=2",
    "CATEGORIES:recycling",
    "END:VEVENT",
    "BEGIN:VEVENT",
    "UID:food-100001@example",
    "DTSTART:20261103T070000Z",
    "RRULE:FREQ=WEEKLY;UNTIL=20271231",
    "SUMMARY:Food caddy",
    "END:VEVENT",
    "END:VCALENDAR",
    "",
)
# Friday collections across the year end: Christmas Day and New Year's Day move them.
FRIDAY = _ics(
    "BEGIN:VEVENT",
    "UID:grey-100002@example",
    "DTSTART;VALUE=DATE:20261218",
    "RRULE:FREQ=WEEKLY;INTERVAL=2;COUNT=10",
    "EXDATE;VALUE=DATE:20270101",
    "RDATE;VALUE=DATE:20270102",
    "SUMMARY:General waste",
    "END:VEVENT",
    "BEGIN:VEVENT",
    "UID:food-100002@example",
    "DTSTART;VALUE=DATE:20261106",
    "RRULE:FREQ=WEEKLY",
    "EXDATE;VALUE=DATE:20261225,20270101",
    "RDATE;VALUE=DATE:20261224,20270102",
    "CATEGORIES:food",
    "END:VEVENT",
    "END:VCALENDAR",
    "",
)
# Line 6 asks for a monthly rule, which the parser does not read.
BAD = _ics(
    "BEGIN:VEVENT",
    "DTSTART;VALUE=DATE:20261201",
    "RRULE:FREQ=MONTHLY",
    "SUMMARY:Grey bin",
    "END:VEVENT",
    "END:VCALENDAR",
    "",
)
ADDRESSES = (
    "uprn,address,postcode\n"
    "100001,1 Brook Street,AV2 1AA\n"
    "100002,3 Brook Street,AV2 1AA\n"
    "100003,5 Brook Street,AV2 1AB\n"
    "100004,Brook Street Garage,AV2 1AD\n"
)


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    """An address file and a feed folder: two good feeds, one bad, one business."""
    addresses = tmp_path / "addresses.csv"
    addresses.write_text(ADDRESSES)
    feeds = tmp_path / "feeds"
    feeds.mkdir()
    for uprn, text in (("100001", MONDAY), ("100002", FRIDAY), ("100003", BAD)):
        (feeds / f"{uprn}.ics").write_text(text, newline="")
    (feeds / "README.txt").write_text("not a feed")
    return addresses, feeds


@pytest.fixture
def store(
    files: tuple[Path, Path],
    redis_client: redis.Redis,
    async_redis: redis.asyncio.Redis,
    namespace: str,
) -> BinStore:
    result = load_feeds(redis_client, namespace, *files, holidays=DEMO_HOLIDAYS)
    assert (result.loaded, result.feeds) == (3, 2)
    assert [(e.path, e.key) for e in result.errors] == [
        (str(files[1] / "100003.ics"), "line 6: RRULE")
    ]
    return BinStore(async_redis, namespace)


def _snapshot(client: redis.Redis, namespace: str) -> dict[str, str]:
    keys = sorted(client.scan_iter(match=f"{namespace}:*", count=1000))
    return {k: repr(client.dump(k)) for k in keys}


@pytest.mark.parametrize(
    ("uprn", "today", "lines"),
    [
        (
            "100001",
            date(2026, 12, 21),
            [
                "Monday 21 December: recycling (blue bin)",
                "Tuesday 22 December: food waste (caddy)",
                "Tuesday 29 December: general waste (grey bin)",
            ],
        ),
        (
            "100001",
            date(2026, 12, 28),
            [
                "Tuesday 29 December: general waste (grey bin)",
                "Tuesday 29 December: food waste (caddy)",
                "Monday 4 January 2027: recycling (blue bin)",
            ],
        ),
        (
            "100002",
            date(2026, 12, 28),
            [
                "Saturday 2 January 2027: general waste (grey bin)",
                "Saturday 2 January 2027: food waste (caddy)",
            ],
        ),
    ],
)
async def test_bin_day_answer_comes_from_the_feed(
    store: BinStore, uprn: str, today: date, lines: list[str]
) -> None:
    dispatcher = CollectingDispatcher()
    action = ActionBinCollectionDay(store=store, today=lambda: today)
    await action.run(dispatcher, tracker({"bin_uprn": uprn}), DOMAIN)
    answer, _link = texts(dispatcher)
    street = "1 Brook Street" if uprn == "100001" else "3 Brook Street"
    assert answer.splitlines() == [f"Next collections at {street}, AV2 1AA:", *lines]


async def test_the_form_finds_feed_addresses(store: BinStore) -> None:
    action = ValidateBinDayForm(store=store)
    dispatcher = CollectingDispatcher()
    events = await action.run(
        dispatcher, tracker({}, text="AV2 1AA", new_slots={"bin_postcode": "AV2 1AA"}), DOMAIN
    )
    slots = {e["name"]: e["value"] for e in events if e["event"] == "slot"}
    assert slots["bin_postcode"] == "AV2 1AA" and slots["bin_uprn"] is None
    found = await store.lookup("AV2 1AA")
    assert [a.line for a in found.addresses] == ["1 Brook Street", "3 Brook Street"]
    # The rejected feed's address is left out, as a bad CSV row is; no feed means no collection.
    assert (await store.lookup("AV2 1AB")).status is PostcodeStatus.UNKNOWN
    assert (await store.lookup("AV2 1AD")).status is PostcodeStatus.NO_ADDRESSES
    assert isinstance(await store.schedule("100001"), IcsScheduleSource)


async def test_missed_bin_form_knows_which_bins_a_feed_has(store: BinStore) -> None:
    action = ValidateMissedBinForm(store=store, today=lambda: date(2026, 12, 28))
    base = {"bin_postcode": "AV2 1AA", "bin_address_choice": "x", "bin_uprn": "100002"}
    dispatcher = CollectingDispatcher()
    state = tracker(base, form="missed_bin_form", new_slots={"bin_type": "garden waste"})
    events = await action.run(dispatcher, state, DOMAIN)
    assert [e["value"] for e in events if e["event"] == "slot"] == [None]
    assert "doesn't collect garden waste" in texts(dispatcher)[0]


def test_cli_reports_bad_feeds_and_loads_the_rest(
    files: tuple[Path, Path],
    redis_url: str,
    redis_client: redis.Redis,
    namespace: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    addresses, feeds = files
    (feeds / "999999.ics").write_text(MONDAY)  # no such address
    argv = [
        "--addresses",
        str(addresses),
        "--ics-dir",
        str(feeds),
        "--holidays",
        str(DEMO_HOLIDAYS),
    ]
    status = main([*argv, "--namespace", namespace, "--redis-url", redis_url])
    out, err = capsys.readouterr()
    assert status == 1
    assert f"bad feed: {feeds / '100003.ics'}: line 6: RRULE: only FREQ=WEEKLY" in err
    assert f"bad feed: {feeds / '999999.ics'}: no address with UPRN 999999" in err
    assert "loaded 3 addresses (2 from iCalendar feeds), rejected 2 rows or feeds" in out
    prefix = f"{namespace}:bins"
    assert redis_client.exists(f"{prefix}:ics:100001", f"{prefix}:ics:100002") == 2
    assert redis_client.exists(f"{prefix}:uprn:100003", f"{prefix}:ics:999999") == 0


def test_cli_feeds_need_addresses(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--ics-dir", "feeds"])
    assert "--ics-dir" in capsys.readouterr().err


def test_cli_unreadable_feed_folder(
    tmp_path: Path, redis_url: str, namespace: str, capsys: pytest.CaptureFixture[str]
) -> None:
    addresses = tmp_path / "addresses.csv"
    addresses.write_text(ADDRESSES)
    argv = ["--addresses", str(addresses), "--ics-dir", str(tmp_path / "missing")]
    assert main([*argv, "--namespace", namespace, "--redis-url", redis_url]) == 2
    assert "cannot read the feed folder" in capsys.readouterr().err


def test_reload_is_idempotent_and_drops_removed_addresses(
    files: tuple[Path, Path], redis_client: redis.Redis, namespace: str
) -> None:
    load_feeds(redis_client, namespace, *files)
    before = _snapshot(redis_client, namespace)
    load_feeds(redis_client, namespace, *files)
    assert _snapshot(redis_client, namespace) == before
    addresses, feeds = files
    addresses.write_text("".join(ADDRESSES.splitlines(keepends=True)[:2]))
    (feeds / "100002.ics").unlink()
    result = load_feeds(redis_client, namespace, addresses, feeds)
    assert (result.loaded, result.feeds) == (1, 1)
    prefix = f"{namespace}:bins"
    assert redis_client.exists(f"{prefix}:uprn:100002", f"{prefix}:ics:100002") == 0
    stored = json.loads(redis_client.get(f"{prefix}:pc:AV2 1AA") or "[]")
    assert [row["uprn"] for row in stored] == ["100001"]
    assert redis_client.exists(f"{prefix}:pc:AV2 1AD") == 0


async def test_feeds_and_rounds_in_one_borough(
    tmp_path: Path,
    files: tuple[Path, Path],
    redis_client: redis.Redis,
    async_redis: redis.asyncio.Redis,
    namespace: str,
) -> None:
    addresses = tmp_path / "mixed.csv"
    addresses.write_text(
        "uprn,address,postcode,rounds\n"
        "100001,1 Brook Street,AV2 1AA,\n"
        "100005,7 Brook Street,AV2 1AA,MON-FOOD\n"
    )
    result = load_feeds(
        redis_client,
        namespace,
        addresses,
        files[1],
        rounds=DEMO_ROUNDS,
        holidays=DEMO_HOLIDAYS,
    )
    assert (result.loaded, result.feeds) == (2, 1)
    store = BinStore(async_redis, namespace)
    assert isinstance(await store.schedule("100001"), IcsScheduleSource)
    rounds = await store.schedule("100005")
    assert isinstance(rounds, RoundScheduleSource)
    assert [c.on for c in rounds.next_collections("100005", date(2026, 12, 28))] == [
        date(2026, 12, 29)  # the demo's Monday food round, after the Boxing Day substitute
    ]

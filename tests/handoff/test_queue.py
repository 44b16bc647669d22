"""The handoff queue against the real test Redis."""

from __future__ import annotations

import asyncio

import redis.asyncio

from bot.handoff.queue import HandoffQueue, contact_keys

from .conftest import Clock, make_record


async def test_priority_first_then_age(queue: HandoffQueue) -> None:
    old_person = make_record("1", minutes=0)
    low = make_record("2", reason="low_confidence", minutes=-30)
    newer_person = make_record("3", minutes=5)
    safeguarding = make_record("4", reason="safeguarding", topic="safeguarding", minutes=20)
    for record in (old_person, low, newer_person, safeguarding):
        await queue.open(record)
    order = [r.case_id for r in await queue.list_open()]
    assert order == [safeguarding.case_id, old_person.case_id, newer_person.case_id, low.case_id]
    assert await queue.count_open() == 4


async def test_routed_to_teams_by_topic(queue: HandoffQueue) -> None:
    bins = make_record("1", topic="bin_day")
    tax = make_record("2", topic="council_tax_pay")
    risk = make_record("3", reason="safeguarding", topic="bin_day")
    for record in (bins, tax, risk):
        await queue.open(record)
    assert [r.case_id for r in await queue.list_open("customer_services")] == [bins.case_id]
    assert [r.case_id for r in await queue.list_open("revenues")] == [tax.case_id]
    assert [r.case_id for r in await queue.list_open("safeguarding")] == [risk.case_id]
    both = await queue.list_open_for(["revenues", "safeguarding"])
    assert [r.case_id for r in both] == [risk.case_id, tax.case_id]


async def test_more_than_a_page_of_open_cases_is_counted_and_paged(queue: HandoffQueue) -> None:
    # Issue 9: the queue showed at most 50 cases and said "50 open cases" when there were more.
    bins = [make_record(f"b{n}", topic="bin_day", minutes=n) for n in range(60)]
    tax = [make_record(f"t{n}", topic="council_tax_pay", minutes=n + 0.5) for n in range(15)]
    risk = make_record("r", reason="safeguarding", topic="bin_day", minutes=90)
    for record in (*bins, *tax, risk):
        await queue.open(record)
    teams = ["customer_services", "revenues", "safeguarding"]
    assert await queue.count_open_for(teams) == 76
    assert await queue.count_open_for(["revenues", "revenues"]) == 15  # a team counted once
    assert await queue.count_open_for([]) == 0
    pages = [await queue.list_open_for(teams, offset, 50) for offset in (0, 50, 100)]
    assert [len(page) for page in pages] == [50, 26, 0]
    seen = [r.case_id for page in pages for r in page]
    everything = await queue.list_open_for(teams, 0, 1000)
    assert seen == [r.case_id for r in everything] and len(set(seen)) == 76
    assert seen[0] == risk.case_id  # the most urgent case leads the first page
    # bins and council tax interleave by age on every page, not team after team
    assert [r.topic for r in pages[0][1:5]] == ["bin_day", "council_tax_pay"] * 2
    assert await queue.list_open_for(["revenues"], offset=10, limit=50) == (
        await queue.list_open("revenues", offset=10, limit=50)
    )


async def test_writing_again_joins_the_open_case(queue: HandoffQueue) -> None:
    first = make_record("1")
    again = make_record("1", minutes=3, text="hello? still there?")
    assert await queue.open(first) == first.case_id
    assert await queue.open(again) == first.case_id
    assert await queue.count_open() == 1
    transcript = await queue.transcript(first.case_id)
    assert [m["text"] for m in transcript] == ["can I talk to a person", "hello? still there?"]


async def test_a_safeguarding_message_escalates_the_joined_case(queue: HandoffQueue) -> None:
    first = make_record("1", topic="bin_day")
    await queue.open(first)
    await queue.open(make_record("1", reason="safeguarding", topic="safeguarding", text="help"))
    record = await queue.get(first.case_id)
    assert record is not None
    assert (record.priority, record.team) == ("P1", "safeguarding")
    assert await queue.list_open("customer_services") == []
    assert [r.case_id for r in await queue.list_open("safeguarding")] == [first.case_id]


async def test_concurrent_opens_of_one_conversation_make_one_case(queue: HandoffQueue) -> None:
    records = [make_record("1", text=f"message {n}") for n in range(20)]
    case_ids = await asyncio.gather(*(queue.open(r) for r in records))
    assert len(set(case_ids)) == 1
    assert await queue.count_open() == 1


async def test_only_one_of_many_racing_agents_wins(
    async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    record = make_record("1")
    await HandoffQueue(async_redis, namespace).open(record)
    # Ten queue objects, as in ten console processes; the gather spreads the claims over
    # many pooled connections, so Redis sees them interleaved.
    queues = [HandoffQueue(async_redis, namespace) for _ in range(10)]
    claims = await asyncio.gather(
        *(queues[n % 10].claim(record.case_id, f"agent{n}") for n in range(50))
    )
    winners = [c for c in claims if c is not None]
    assert len(winners) == 1
    assert await queues[0].holder(record.case_id) == winners[0].agent


async def test_renewing_and_releasing_a_lease(queue: HandoffQueue) -> None:
    record = make_record("1")
    await queue.open(record)
    assert await queue.claim(record.case_id, "ann") is not None
    assert await queue.claim(record.case_id, "ann") is not None  # renewal
    assert await queue.claim(record.case_id, "bob") is None
    assert not await queue.release(record.case_id, "bob")
    assert await queue.holder(record.case_id) == "ann"
    assert await queue.release(record.case_id, "ann")
    assert await queue.claim(record.case_id, "bob") is not None


async def test_an_expired_lease_lets_another_agent_claim(queue: HandoffQueue) -> None:
    record = make_record("1")
    await queue.open(record)
    assert await queue.claim(record.case_id, "ann", lease_seconds=0.2) is not None
    assert await queue.claim(record.case_id, "bob") is None
    await asyncio.sleep(0.35)
    assert await queue.holder(record.case_id) is None
    assert await queue.claim(record.case_id, "bob") is not None
    # ann coming back cannot renew a lease that is now bob's
    assert await queue.claim(record.case_id, "ann") is None
    assert await queue.holder(record.case_id) == "bob"


async def test_closed_or_unknown_cases_cannot_be_claimed(queue: HandoffQueue) -> None:
    record = make_record("1")
    await queue.open(record)
    assert await queue.resolve(record.case_id, "ann")
    assert await queue.claim(record.case_id, "ann") is None
    assert await queue.claim("nope", "ann") is None


async def test_reassign_moves_the_case_and_drops_the_lease(queue: HandoffQueue) -> None:
    record = make_record("1")
    await queue.open(record)
    await queue.claim(record.case_id, "ann")
    assert await queue.reassign(record.case_id, "communications")
    assert await queue.list_open("customer_services") == []
    assert [r.team for r in await queue.list_open("communications")] == ["communications"]
    assert await queue.holder(record.case_id) is None
    await queue.resolve(record.case_id)
    # a closed case must not come back into a team's queue
    assert not await queue.reassign(record.case_id, "housing")
    assert await queue.list_open("housing") == []


async def test_notes_are_kept_in_order(queue: HandoffQueue, handoff_clock: Clock) -> None:
    record = make_record("1")
    await queue.open(record)
    await queue.add_note(record.case_id, "ann", "called the depot")
    handoff_clock.advance(minutes=1)
    await queue.add_note(record.case_id, "bob", "crew will return tomorrow")
    notes = await queue.notes(record.case_id)
    assert [(n["agent"], n["text"]) for n in notes] == [
        ("ann", "called the depot"),
        ("bob", "crew will return tomorrow"),
    ]


async def test_resolve_and_return_to_bot(queue: HandoffQueue, handoff_clock: Clock) -> None:
    first, second = make_record("1"), make_record("2")
    await queue.open(first)
    await queue.open(second)
    handoff_clock.advance(minutes=4)
    await queue.append_message(first.conversation_id, "agent", "Hello, I can help.")
    assert await queue.resolve(first.case_id, "ann")
    assert not await queue.resolve(first.case_id, "ann")  # only once
    assert await queue.return_to_bot(second.case_id, "bob")
    assert await queue.count_open() == 0
    assert await queue.case_for(first.conversation_id) is None
    resolved, returned = await queue.get(first.case_id), await queue.get(second.case_id)
    assert resolved is not None and resolved.status == "resolved"
    assert returned is not None and returned.status == "returned_to_bot"
    meta = await queue.meta(first.case_id)
    assert meta["first_response_at"] == "2027-03-03T10:04:00+00:00"
    assert meta["closed_by"] == "ann"
    # the resident writing afterwards opens a new case
    later = make_record("1", minutes=10)
    assert await queue.open(later) == later.case_id


async def test_concurrent_closes_succeed_once(queue: HandoffQueue) -> None:
    record = make_record("1")
    await queue.open(record)
    results = await asyncio.gather(*(queue.resolve(record.case_id, f"a{n}") for n in range(10)))
    assert results.count(True) == 1


async def test_earlier_cases_match_across_channels(queue: HandoffQueue) -> None:
    whatsapp = make_record("447700900123", minutes=0)
    await queue.open(whatsapp)
    await queue.resolve(whatsapp.case_id)
    telegram = make_record(
        "555",
        channel="telegram",
        account="councilbot",
        minutes=30,
        entities={"phone": ["07700 900123"], "email": ["Sam@Example.org"]},
    )
    await queue.open(telegram)
    earlier = await queue.earlier_cases(telegram)
    assert [r.case_id for r in earlier] == [whatsapp.case_id]
    assert "email:sam@example.org" in contact_keys(telegram)


async def test_events_stream_records_changes(queue: HandoffQueue) -> None:
    record = make_record("1")
    await queue.open(record)
    await queue.claim(record.case_id, "ann")
    await queue.resolve(record.case_id)
    entries = await queue.redis.xrange(queue.events_key)
    assert [fields["kind"] for _, fields in entries] == ["opened", "claimed", "resolved"]

"""The Open311 client and the local stand-in, each checked against the GeoReport v2
specification's own examples, then against each other over real HTTP."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
import redis.asyncio

from bot.errors import BackOfficeError
from bot.reports.model import Contact, ProblemReport
from bot.reports.open311 import (
    MAX_DESCRIPTION,
    Open311Client,
    marker,
    nearby_open,
    post_fields,
)
from bot.testing.open311 import Open311StandIn, serving
from tests.reports.conftest import make_report
from tests.reports.spec import published, readable

BASE = "https://api.city.gov/dev/v2"


def report(**changes: Any) -> ProblemReport:
    """Resident 1's pothole report (``tests.reports.conftest.make_report``)."""
    return make_report(1, **changes)


def spec_server(routes: dict[tuple[str, str], httpx.Response]) -> httpx.MockTransport:
    """Answers with the specification's examples, recording the requests."""

    def handle(request: httpx.Request) -> httpx.Response:
        handle.seen.append(request)  # type: ignore[attr-defined]
        return routes[(request.method, request.url.path.removeprefix("/dev/v2/"))]

    handle.seen = []  # type: ignore[attr-defined]
    return httpx.MockTransport(handle)


def example(name: str, status: int = 200) -> httpx.Response:
    return httpx.Response(status, json=readable(name))


# -- the client against the specification's examples --------------------------------------


async def test_the_services_list_of_the_specification_is_read() -> None:
    transport = spec_server({("GET", "services.json"): example("services.json")})
    async with Open311Client(BASE, "city.gov", transport=transport) as client:
        services = await client.services()
    assert [s.code for s in services] == ["001", "002", "003"]
    first = services[0]
    assert first.name == "Cans left out 24x7" and first.metadata and first.type == "realtime"
    assert first.keywords == ("lorem", "ipsum", "dolor") and first.group == "sanitation"
    sent = transport.handler.seen[0]  # type: ignore[attr-defined]
    assert sent.url.params["jurisdiction_id"] == "city.gov"


async def test_the_verbatim_services_example_is_not_json_and_is_refused_clearly() -> None:
    # "service_code":001 is not JSON (SOURCE.md): a server sending it gets a clear error
    verbatim = httpx.Response(200, content=published("services.json").encode())
    transport = spec_server({("GET", "services.json"): verbatim})
    async with Open311Client(BASE, transport=transport) as client:
        with pytest.raises(BackOfficeError) as caught:
            await client.services()
    assert caught.value.status == 200 and "not JSON" in caught.value.reason


async def test_a_service_definition_becomes_questions() -> None:
    transport = spec_server({("GET", "services/DMV66.json"): example("service_definition.json")})
    async with Open311Client(BASE, transport=transport) as client:
        definition = await client.definition("DMV66")
    (question,) = definition.attributes
    assert question.code == "WHISHETN" and question.datatype == "singlevaluelist"
    assert question.required and question.variable and question.order == 1
    assert question.description == "What is the ticket/tag/DL number?"
    assert question.values == (("123", "Ford"), ("124", "Chrysler"))  # numbers read as text
    assert question.datatype_description == ""  # null in the example


async def test_a_submission_is_posted_as_the_specification_shows() -> None:
    transport = spec_server({("POST", "requests.json"): example("post_response.json")})
    contact = Contact(
        email="smit333@sfgov.edu", phone="111111111", first_name="john", last_name="smith"
    )
    async with Open311Client(BASE, "city.gov", "xyz", transport=transport) as client:
        submitted = await client.submit(report(contact=contact, address_string="1234 5th street"))
    assert submitted.service_request_id == "293944" and submitted.token is None
    assert submitted.service_notice.startswith("The City will inspect")
    sent = transport.handler.seen[0]  # type: ignore[attr-defined]
    assert sent.headers["content-type"].startswith("application/x-www-form-urlencoded")
    ours = dict(parse_qsl(sent.content.decode()))
    theirs = dict(parse_qsl(published("post_request.txt").strip()))
    # every field we send is one the specification's example request sends
    assert set(ours) - {"attribute[size]"} <= set(theirs)
    expected = "api_key jurisdiction_id service_code lat long email first_name last_name phone"
    assert {*expected.split(), "description", "media_url"} <= set(ours)
    assert ours["attribute[size]"] == "large" and ours["api_key"] == "xyz"
    assert ours["description"].endswith("\n\n" + marker("r-0001"))


async def test_contact_details_are_sent_only_when_the_resident_agreed() -> None:
    names = {name for name, _ in post_fields(report())}
    assert not names & {"email", "phone", "first_name", "last_name"}
    assert "api_key" not in names  # none configured


def test_a_long_description_is_cut_to_4000_characters_keeping_the_marker() -> None:
    fields = dict(post_fields(report(description="x" * 5000)))
    assert len(fields["description"]) == MAX_DESCRIPTION
    assert fields["description"].endswith(marker("r-0001"))


async def test_a_token_answer_is_exchanged_for_the_id() -> None:
    transport = spec_server(
        {
            ("POST", "requests.json"): httpx.Response(200, json=[{"token": 12345}]),
            ("GET", "tokens/12345.json"): example("token_response.json"),
        }
    )
    async with Open311Client(BASE, transport=transport) as client:
        submitted = await client.submit(report())
        assert submitted == type(submitted)(None, "12345", "")
        assert await client.token("12345") == "638344"


async def test_requests_of_the_specification_are_read() -> None:
    transport = spec_server({("GET", "requests.json"): example("requests.json")})
    async with Open311Client(BASE, transport=transport) as client:
        found = await client.requests(ids=["638344", "638349"])
    assert [(r.service_request_id, r.status) for r in found] == [
        ("638344", "closed"),
        ("638349", "open"),
    ]
    closed = found[0]
    assert closed.status_notes == "Duplicate request." and closed.service_code == "006"
    assert closed.updated_datetime == "2010-04-14T06:37:38-08:00"
    assert closed.lat == pytest.approx(37.762221815) and closed.description == ""
    sent = transport.handler.seen[0]  # type: ignore[attr-defined]
    assert sent.url.params["service_request_id"] == "638344,638349"


async def test_the_specification_error_is_reported_with_its_description() -> None:
    transport = spec_server({("POST", "requests.json"): example("error_403.json", 403)})
    async with Open311Client(BASE, transport=transport) as client:
        with pytest.raises(BackOfficeError) as caught:
            await client.submit(report())
    error = caught.value
    assert error.status == 403 and error.reason.startswith("Invalid api_key received")
    assert error.retryable and not error.ambiguous  # a key being fixed: try again later


@pytest.mark.parametrize(
    ("answer", "status", "ambiguous", "retryable"),
    [
        (lambda r: httpx.Response(500, text="oops"), 500, True, True),
        # a 400 naming nothing is a General Service Error (tests/data/open311/errors_400.json)
        (lambda r: httpx.Response(400, json=[{"code": 400}]), 400, True, True),
        (lambda r: httpx.Response(404, json=[{"code": 404}]), 404, False, False),
        (lambda r: httpx.Response(200, text="<html>"), 200, True, True),
        (lambda r: httpx.Response(200, json={"weird": True}), 200, True, True),
        (lambda r: httpx.Response(200, json=[]), 200, True, True),
    ],
)  # fmt: skip
async def test_failures_say_whether_to_try_again_and_whether_the_post_may_have_landed(
    answer: Callable[[httpx.Request], httpx.Response], status: int, ambiguous: bool, retryable: bool
) -> None:
    async with Open311Client(BASE, transport=httpx.MockTransport(answer)) as client:
        with pytest.raises(BackOfficeError) as caught:
            await client.submit(report())
    assert caught.value.status == status and caught.value.retryable is retryable
    assert caught.value.ambiguous is ambiguous


@pytest.mark.parametrize("vector", readable("errors_400.json"), ids=lambda v: str(v["body"]))
async def test_a_400_is_permanent_only_when_it_refuses_the_request_itself(
    vector: dict[str, object],
) -> None:
    answer = httpx.Response(int(str(vector["status"])), json=vector["body"])
    async with Open311Client(BASE, transport=httpx.MockTransport(lambda r: answer)) as client:
        with pytest.raises(BackOfficeError) as caught:
            await client.submit(report())
    error = caught.value
    assert error.status == 400
    assert error.retryable is not vector["permanent"]
    # a general error may have been part-processed: the marker is looked for before a re-POST
    assert error.ambiguous is not vector["permanent"]
    for item in vector["body"]:  # type: ignore[attr-defined]
        if item.get("description"):
            assert item["description"] in error.reason  # every error kept, for agents


async def test_a_read_timeout_after_sending_is_ambiguous_a_refused_connection_is_not() -> None:
    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    for handler, ambiguous in ((timeout, True), (refused, False)):
        async with Open311Client(BASE, transport=httpx.MockTransport(handler)) as client:
            with pytest.raises(BackOfficeError) as caught:
                await client.submit(report())
        assert caught.value.status == 0 and caught.value.ambiguous is ambiguous


# -- the stand-in against the specification's examples ---------------------------------------


@pytest.fixture
def spec_standin() -> Open311StandIn:
    """The stand-in holding the specification's services and definition."""
    definition = readable("service_definition.json")
    extra = {"service_code": "DMV66", "service_name": "DMV", "metadata": True, "type": "realtime"}
    services = [*readable("services.json"), extra]
    return Open311StandIn(services, {"DMV66": definition}, api_key="xyz")


async def test_the_stand_in_answers_as_the_specification_shows(
    spec_standin: Open311StandIn,
) -> None:
    transport = httpx.ASGITransport(app=spec_standin.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t/open311/v2/") as http:
        assert (await http.get("services.json")).json()[:3] == readable("services.json")
        assert (await http.get("services/DMV66.json")).json() == readable("service_definition.json")
        # the specification's example request, as sent
        body = (
            published("post_request.txt").strip().replace("service_code=001", "service_code=DMV66")
        )
        body += "&attribute[WHISHETN]=123"
        posted = await http.post(
            "requests.json",
            content=body,
            headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
        )
        assert posted.status_code == 200
        (answer,) = posted.json()
        assert set(answer) == set(readable("post_response.json")[0])
        request_id = answer["service_request_id"]
        listed = (await http.get("requests.json", params={"service_request_id": request_id})).json()
        assert set(listed[0]) == set(readable("requests.json")[0])
        assert listed[0]["description"] == "A large sinkhole is destroying the street"
        refused = await http.post(
            "requests.json",
            content=body.replace("api_key=xyz", "api_key=nope"),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert refused.status_code == 403
        assert set(refused.json()[0]) == set(readable("error_403.json")[0])


async def test_the_stand_in_refuses_what_the_specification_does_not_allow(
    spec_standin: Open311StandIn,
) -> None:
    transport = httpx.ASGITransport(app=spec_standin.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t/open311/v2/") as http:
        cases = [
            ({"api_key": "xyz", "service_code": "999", "lat": "1", "long": "1"}, 404),
            ({"api_key": "xyz", "service_code": "001"}, 400),  # no location
            (
                {
                    "api_key": "xyz",
                    "service_code": "001",
                    "address_string": "x",
                    "description": "y" * 4001,
                },
                400,
            ),
            ({"api_key": "xyz", "service_code": "DMV66", "lat": "1", "long": "1"}, 400),
        ]
        for form, status in cases:
            answer = await http.post("requests.json", data=form)
            assert answer.status_code == status, form
            assert answer.json()[0]["code"] == status


# -- the client and the stand-in together, over real HTTP ----------------------------------


@pytest.fixture
async def standin_url() -> AsyncIterator[tuple[Open311StandIn, str]]:
    standin = Open311StandIn(api_key="k", jurisdiction_id="ashvale.example")
    async with serving(standin) as url:
        yield standin, url


async def test_services_are_cached_in_redis_until_they_expire(
    standin_url: tuple[Open311StandIn, str], async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    standin, url = standin_url
    async with Open311Client(
        url, "ashvale.example", "k", redis=async_redis, namespace=namespace, cache_seconds=60
    ) as client:
        first = await client.services()
        second = await client.services()
        assert first == second and first[0].name == "Pothole"
        assert standin.calls.count(("GET", "/open311/v2/services.json")) == 1
        assert 0 < await async_redis.ttl(client.cache_key) <= 60
        await async_redis.delete(client.cache_key)
        await client.services()
        assert standin.calls.count(("GET", "/open311/v2/services.json")) == 2


async def test_a_report_is_submitted_found_by_marker_and_its_status_followed(
    standin_url: tuple[Open311StandIn, str],
) -> None:
    standin, url = standin_url
    async with Open311Client(url, "ashvale.example", "k") as client:
        submitted = await client.submit(report())
        assert submitted.service_request_id is not None
        stored = standin.requests[submitted.service_request_id]
        assert stored.attributes == {"size": "large"} and stored.contact == {}
        assert stored.media_url == "https://media.example/p/abc?sig=1"
        since = datetime.now(UTC) - timedelta(minutes=1)
        found = await client.find_marked(report(), since)
        assert found is not None and found.service_request_id == submitted.service_request_id
        assert await client.find_marked(report(report_id="r-other"), since) is None
        standin.set_status(submitted.service_request_id, "closed", "Filled in today")
        (now,) = await client.requests(ids=[submitted.service_request_id])
        assert (now.status, now.status_notes) == ("closed", "Filled in today")


async def test_a_wrong_key_is_a_403_the_outage_a_503_and_a_slow_server_a_timeout(
    standin_url: tuple[Open311StandIn, str],
) -> None:
    standin, url = standin_url
    async with Open311Client(url, "ashvale.example", "wrong") as client:
        with pytest.raises(BackOfficeError) as caught:
            await client.submit(report())
        assert caught.value.status == 403
    standin.faults.down_until = 4e9
    async with Open311Client(url, "ashvale.example", "k") as client:
        with pytest.raises(BackOfficeError) as caught:
            await client.services()
        assert caught.value.status == 503 and caught.value.retryable
    standin.faults.down_until = 0
    standin.faults.delay = 1.0
    async with Open311Client(url, "ashvale.example", "k", timeout=0.2) as client:
        with pytest.raises(BackOfficeError) as caught:
            await client.submit(report())
        assert caught.value.status == 0 and caught.value.ambiguous
    assert len(standin.by_marker(marker("r-0001"))) <= 1


async def test_nearby_open_requests_of_the_same_service_are_offered_nearest_first(
    standin_url: tuple[Open311StandIn, str],
) -> None:
    standin, url = standin_url
    near = standin.add_request("001", 52.20018, -1.5)  # about 20 m north
    nearer = standin.add_request("001", 52.20005, -1.5)  # about 5.5 m
    standin.add_request("001", 52.21, -1.5)  # over a kilometre away
    standin.add_request("003", 52.2, -1.5)  # fly-tipping, not a pothole
    closed = standin.add_request("001", 52.2001, -1.5)
    standin.set_status(closed.service_request_id, "closed")
    async with Open311Client(url, "ashvale.example") as client:
        found = await nearby_open(client, "001", 52.2, -1.5, 50)
    assert [n.service_request_id for n in found] == [
        nearer.service_request_id,
        near.service_request_id,
    ]
    assert found[1].distance_m == pytest.approx(20.0, abs=0.5)
    assert found[0].requested_datetime == nearer.requested_datetime


async def test_the_token_mode_answers_a_token_then_the_id(async_redis: redis.asyncio.Redis) -> None:
    standin = Open311StandIn(mode="batch", token_delay=0.0)
    async with serving(standin) as url, Open311Client(url) as client:
        submitted = await client.submit(report())
        assert submitted.service_request_id is None and submitted.token
        request_id = await client.token(submitted.token)
        assert request_id in standin.requests
    assert json.loads(json.dumps(standin.snapshot()))  # serialisable for the demo's log


# -- multivaluelist answers ---------------------------------------------------------------


def test_several_answers_are_posted_as_the_specification_shows() -> None:
    spec = parse_qsl(published("post_request_multivaluelist.txt").strip())
    answers = {"code1": [value for _, value in spec], "size": "large"}
    ours = [f for f in post_fields(report(attributes=answers)) if f[0].startswith("attribute")]
    assert ours == [*spec, ("attribute[size]", "large")]


def test_a_report_with_several_answers_round_trips_and_old_records_still_read() -> None:
    several = report(attributes={"code1": ["value1", "value2"], "size": "large"})
    assert ProblemReport.from_json(several.to_json()) == several
    old = json.loads(report().to_json())  # written before lists were allowed
    assert ProblemReport.from_json(json.dumps(old)).attributes == {"size": "large"}


@pytest.fixture
def multi_standin() -> Open311StandIn:
    """The stand-in with the specification's definition turned into a multivaluelist."""
    definition = readable("service_definition.json")
    definition["attributes"][0]["datatype"] = "multivaluelist"
    extra = {"service_code": "DMV66", "service_name": "DMV", "metadata": True, "type": "realtime"}
    return Open311StandIn([extra], {"DMV66": definition})


async def test_the_stand_in_keeps_several_answers_and_refuses_unknown_ones(
    multi_standin: Open311StandIn,
) -> None:
    async with serving(multi_standin) as url, Open311Client(url) as client:
        answers: dict[str, str | list[str]] = {"WHISHETN": ["123", "124"]}
        sent = await client.submit(report(service_code="DMV66", attributes=answers))
        stored = multi_standin.requests[str(sent.service_request_id)]
        assert stored.attributes == {"WHISHETN": ["123", "124"]}
        for wrong in ({"WHISHETN": ["123", "999"]}, {"WHISHETN": []}):
            with pytest.raises(BackOfficeError) as caught:
                await client.submit(report(service_code="DMV66", attributes=wrong))
            assert caught.value.status == 400

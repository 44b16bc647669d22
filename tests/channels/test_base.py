from __future__ import annotations

import pytest

from bot.channels.base import (
    Attachment,
    Button,
    ChannelAdapter,
    Contact,
    InboundMessage,
    Location,
    OutboundMessage,
    Receipt,
    Template,
    constant_time_equal,
    conversation_id,
    header,
    numbered_text,
    retry_after_seconds,
)
from bot.handoff.record import split_conversation_id


def test_conversation_id_round_trips_with_the_handoff_split() -> None:
    cid = conversation_id("whatsapp", "+441234567890", "+447700900123")
    assert cid == "whatsapp:+441234567890:+447700900123"
    assert split_conversation_id(cid, "whatsapp") == ("+441234567890", "+447700900123")


@pytest.mark.parametrize(
    ("channel", "account", "sender"),
    [("", "a", "b"), ("x", "", "b"), ("x", "a", ""), ("x", "a:b", "c"), ("x:y", "a", "b")],
)
def test_conversation_id_refuses_parts_it_could_not_split(
    channel: str, account: str, sender: str
) -> None:
    with pytest.raises(ValueError):
        conversation_id(channel, account, sender)


def test_inbound_message_json_round_trip() -> None:
    message = InboundMessage(
        channel="telegram",
        account="councilbot",
        sender="123",
        message_id="9",
        text="hi",
        received_at=1.5,
        display_name="Priya",
        attachments=(Attachment("image", "tg-file:x", "image/jpeg"),),
        location=Location(51.5, -0.12, "Town Hall"),
        quick_reply_payload="/bin_day",
        raw_ref="update_id=9",
    )
    assert InboundMessage.from_json(message.to_json()) == message
    assert message.conversation_id == "telegram:councilbot:123"


def test_outbound_message_json_round_trip() -> None:
    message = OutboundMessage(
        "Pick one",
        buttons=(Button("Bins", "/bin_day"), Button("Tax")),
        template=Template("council_reply_waiting", {"1": "Alex"}),
        tag="HUMAN_AGENT",
    )
    assert OutboundMessage.from_json(message.to_json()) == message


def test_buttons_degrade_to_numbered_text() -> None:
    text = numbered_text(OutboundMessage("Which service?", (Button("Bins"), Button("Tax"))))
    assert text.splitlines()[:4] == ["Which service?", "", "1. Bins", "2. Tax"]
    assert numbered_text(OutboundMessage("plain")) == "plain"


def test_helpers() -> None:
    assert constant_time_equal("abc", b"abc")
    assert not constant_time_equal("abc", "abd")
    assert header({"X-Thing": "1"}, "x-thing") == "1"
    assert header({}, "x-thing") == ""
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") is None
    assert retry_after_seconds(None) is None


def test_adapter_is_abstract() -> None:
    with pytest.raises(TypeError):
        ChannelAdapter()  # type: ignore[abstract]


def test_contact_round_trips_and_receipts_name_their_conversation() -> None:
    message = InboundMessage(
        "telegram", "councilbot", "5", "9", "", 1.0, contact=Contact("0788531373", "Adolf Taxi")
    )
    assert InboundMessage.from_json(message.to_json()) == message
    receipt = Receipt("whatsapp", "+441234567890", "+447700900123", "read", 2.0, ("SM1",))
    assert receipt.conversation_id == "whatsapp:+441234567890:+447700900123"

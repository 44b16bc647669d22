from rasa.shared.nlu.training_data.message import Message

from bot.nlu.postcode import PostcodeEntityExtractor, entities_in


def test_entities_are_typed_and_ordered() -> None:
    text = "Flat 3, 45 Mill Lane, sw1a1aa or SW1A 1A"
    assert [(entity["entity"], entity["value"]) for entity in entities_in(text)] == [
        ("address", "Flat 3, 45 Mill Lane"),
        ("postcode", "SW1A 1AA"),
        ("malformed_postcode", "SW1A 1A"),
    ]


def test_component_appends_to_existing_entities() -> None:
    extractor = PostcodeEntityExtractor.create({}, None, None, None)  # type: ignore[arg-type]
    earlier = {"entity": "other", "value": "x", "start": 0, "end": 1}
    message = Message(data={"text": "my postcode is ls1 4ap", "entities": [earlier]})
    extractor.process([message, Message(data={})])
    entities = message.get("entities")
    assert entities[0] == earlier
    assert entities[1]["entity"] == "postcode"
    assert entities[1]["value"] == "LS1 4AP"
    assert entities[1]["extractor"] == "PostcodeEntityExtractor"
    assert (entities[1]["start"], entities[1]["end"]) == (15, 22)

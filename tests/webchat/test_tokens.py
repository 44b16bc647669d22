"""Conversation tokens: unguessable, signed, one council's only, and they expire."""

from __future__ import annotations

import pickle

import pytest

from bot.webchat.tokens import MAX_AGE_SECONDS, TokenError, TokenSigner

SECRET = "s" * 24 + "0123456789abcdef"


class Clock:
    def __init__(self) -> None:
        self.now = 1_764_500_000.0

    def __call__(self) -> float:
        return self.now


def test_a_token_names_a_new_random_conversation_of_its_council() -> None:
    signer = TokenSigner(SECRET, "ashvale")
    token, conversation = signer.issue()
    assert signer.verify(token) == conversation
    assert conversation.council_id == "ashvale"
    assert len(conversation.conversation) == 32  # 128 random bits, hex
    assert {signer.issue()[1].conversation for _ in range(200)}.isdisjoint(
        {conversation.conversation}
    )


def test_a_changed_token_is_refused() -> None:
    signer = TokenSigner(SECRET, "ashvale")
    token, _ = signer.issue()
    head, conversation, rest = token.split(".", 2)[1], token.split(".")[2], token
    other = "f" * 32 if conversation != "f" * 32 else "e" * 32
    forged = rest.replace(conversation, other)
    with pytest.raises(TokenError, match="bad signature"):
        signer.verify(forged)
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    with pytest.raises(TokenError):
        signer.verify(flipped)
    for junk in ("", "Bearer", "wc1.ashvale", token + ".x", token.replace("wc1", "wc2")):
        with pytest.raises(TokenError, match="malformed"):
            signer.verify(junk)
    assert head == "ashvale"


def test_another_councils_token_is_refused_even_with_the_same_secret() -> None:
    glanfor_token, _ = TokenSigner(SECRET, "glanfor").issue()
    with pytest.raises(TokenError):
        TokenSigner(SECRET, "ashvale").verify(glanfor_token)
    # renaming the council in the token does not help: the key is the council's
    renamed = glanfor_token.replace("glanfor", "ashvale")
    with pytest.raises(TokenError, match="bad signature"):
        TokenSigner(SECRET, "ashvale").verify(renamed)


def test_a_token_signed_with_another_secret_is_refused() -> None:
    token, _ = TokenSigner("x" * 40, "ashvale").issue()
    with pytest.raises(TokenError, match="bad signature"):
        TokenSigner(SECRET, "ashvale").verify(token)


def test_a_token_expires() -> None:
    clock = Clock()
    signer = TokenSigner(SECRET, "ashvale", clock=clock)
    token, _ = signer.issue()
    clock.now += MAX_AGE_SECONDS - 1
    signer.verify(token)
    clock.now += 2
    with pytest.raises(TokenError, match="expired"):
        signer.verify(token)


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="32"):
        TokenSigner("short", "ashvale")


def test_the_error_survives_pickling() -> None:
    error = pickle.loads(pickle.dumps(TokenError("bad signature")))
    assert error.reason == "bad signature"

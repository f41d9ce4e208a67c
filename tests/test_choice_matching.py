"""Matching answers to choice options: whole words, case and punctuation blind, negation-aware."""

from __future__ import annotations

import pytest

from sipassist.voice.choice import ChoiceError, ChoiceSpec

SPEC = ChoiceSpec.from_request({
    "prompt": "Say yes to confirm or no to cancel.",
    "options": [
        {"value": "confirmed", "synonyms": ["yes", "yeah", "confirm", "that works"]},
        {"value": "cancelled", "synonyms": ["no", "nope", "cancel"]},
    ],
    "timeout_seconds": 15,
})


@pytest.mark.parametrize(("said", "value"), [
    ("yes that works", "confirmed"),
    ("Yeah, that works.", "confirmed"),
    ("YES!", "confirmed"),
    ("I'd like to confirm please", "confirmed"),
    ("Confirmed.", "confirmed"),
    ("No, cancel it.", "cancelled"),
    ("nope", "cancelled"),
    ("Please cancel", "cancelled"),
    ("I don't want to confirm", None),       # a negation never matches its positive
    ("do not confirm", None),
    ("not yes", None),
    ("yesterday", None),                     # whole words only
    ("the weather is nice", None),
    ("", None),
    ("yes no", None),                        # two options named: ask again
])
def test_match(said, value):
    option = SPEC.match(said)
    assert (option.value if option else None) == value


def test_digits_default_to_option_order():
    assert SPEC.match_digit("1").value == "confirmed"
    assert SPEC.match_digit("2").value == "cancelled"
    assert SPEC.match_digit("3") is None


def test_explicit_digits_and_default_prompt():
    spec = ChoiceSpec.from_request({"options": [{"value": "left", "digit": "*"},
                                                {"value": "right", "digit": "#"}]})
    assert spec.match_digit("#").value == "right"
    assert spec.prompt == "Please say left or right."
    assert spec.timeout_seconds == 15


def test_document_round_trip():
    assert ChoiceSpec.from_document(SPEC.to_document()) == SPEC


@pytest.mark.parametrize("bad", [
    {"options": []},
    {"options": [{"value": "a"}, {"value": "a"}]},
    {"options": [{"value": "a"}], "timeout_seconds": "ten"},
    {"options": [{"value": "a"}], "timeout_seconds": 2.5},
])
def test_bad_specs(bad):
    with pytest.raises(ChoiceError):
        ChoiceSpec.from_request(bad)

"""The guard on the model's words: made-up times and temperatures are not spoken, the rest is."""

from __future__ import annotations

import pytest

from sipassist.voice.llm import CANNOT_CHECK, clean, guarded, invents_a_fact


@pytest.mark.parametrize("sentence", [
    "I am a voice assistant, and I am happy to help.",
    "Am I right? Yes, you are.",
    "I'm not sure, but I am glad you asked.",
    "Water boils at 100 degrees Celsius at sea level.",
    "A right angle has 90 degrees.",
    "The PM of the United Kingdom lives at Number 10.",
    "Five amps is plenty for a lamp.",
    "The sky is blue because air scatters blue light more than red light.",
    "Which one am I supposed to pick?",
])
def test_ordinary_sentences_are_spoken(sentence):
    assert not invents_a_fact(sentence)
    assert list(guarded([sentence])) == [sentence]


@pytest.mark.parametrize("sentence", [
    "The shop opens at 5 am.",
    "It's 5 pm in London.",
    "It is currently 10:30 AM.",
    "The meeting is at 10:30.",
    "I will call you at 7 a.m. tomorrow.",
    "It's six o'clock.",
    "It's nine p.m. in Paris.",
    "It's 72 degrees outside.",
    "It is currently 20°C.",
    "The temperature is 18 degrees right now.",
    "Today is Monday, the fifth of May.",
    "The time is a quarter past three.",
])
def test_made_up_times_and_temperatures_are_not(sentence):
    assert invents_a_fact(sentence)
    assert list(guarded(["Sure.", sentence, "Anything else?"])) == ["Sure.", CANNOT_CHECK]


def test_subscripts_are_read_as_digits():
    assert clean("The symbol for water is **H₂O**.") == "The symbol for water is H2O."

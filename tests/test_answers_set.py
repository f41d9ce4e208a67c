"""The phone-line test set itself: its size and coverage, and the rules on its own text."""

from __future__ import annotations

from collections import Counter

import pytest

from sipassist.bench.answers import CATEGORIES, comparable_words, intent_is_right, load_set, wer
from sipassist.bench.llm import questions

UTTERANCES = load_set()


def test_the_set_covers_every_tool_and_the_general_questions():
    assert len(UTTERANCES) >= 150
    counts = Counter(u.category for u in UTTERANCES)
    assert set(counts) == set(CATEGORIES), counts
    assert len(questions()) >= 30  # general questions with expected keywords
    assert len({u.say for u in UTTERANCES}) == len(UTTERANCES)  # no repeats


@pytest.mark.parametrize("utterance", UTTERANCES, ids=lambda u: f"{u.index}-{u.category}")
def test_the_rules_understand_the_set_as_written(utterance):
    assert intent_is_right(utterance, utterance.say)


def test_wer_forgives_only_the_writing():
    assert comparable_words("What's 15% of ten?") == ["what", "is", "15", "percent", "of", "10"]
    assert wer("What's the weather like?", "What is the weather like") == 0
    assert wer("How humid is it?", "How human is it?") == 0.25

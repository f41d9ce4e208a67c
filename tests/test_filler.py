"""The filler: said first only when the answer is slow to start."""

from __future__ import annotations

import threading

import pytest

from sipassist.calls.filler import WithFiller


def test_a_quick_answer_has_no_filler():
    answer = WithFiller(["It's 3 pm.", "Anything else?"], after=5.0, filler="One moment.")
    assert list(answer) == ["It's 3 pm.", "Anything else?"] and not answer.filled


def test_a_slow_answer_starts_with_the_filler():
    ready = threading.Event()

    def slow():
        ready.wait(10)  # released only once the filler has been handed out
        yield "Here it is."

    answer = WithFiller(slow(), after=0.01, filler="One moment.")
    spoken = iter(answer)
    assert next(spoken) == "One moment."
    ready.set()
    assert list(spoken) == ["Here it is."] and answer.filled


def test_a_failing_answer_raises_on_the_callers_thread():
    def broken():
        yield "Let me see."
        raise RuntimeError("model crashed")

    with pytest.raises(RuntimeError, match="model crashed"):
        list(WithFiller(broken(), after=5.0, filler="One moment."))


def test_close_stops_the_answer_and_runs_its_cleanup():
    cleaned = threading.Event()

    def endless():
        try:
            while True:
                yield "More."
        finally:
            cleaned.set()

    answer = WithFiller(endless(), after=5.0, filler="One moment.")
    assert next(iter(answer)) == "More."
    answer.close()
    assert cleaned.is_set()


def test_the_next_sentence_is_worked_out_only_when_asked_for():
    produced = []

    def counting():
        for n in range(3):
            produced.append(n)
            yield f"Sentence {n}."

    answer = WithFiller(counting(), after=5.0, filler="One moment.")
    spoken = iter(answer)
    assert next(spoken) == "Sentence 0."
    assert produced == [0]  # nothing ran ahead while the first was being spoken
    assert list(spoken) == ["Sentence 1.", "Sentence 2."]
    answer.close()

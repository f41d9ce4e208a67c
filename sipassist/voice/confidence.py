"""Whether a transcript is sure enough to answer, or the caller should be asked again.

A misheard question answered with confidence is worse than "Sorry, I didn't catch that.": the
small LLM answers any words it gets, and a misheard number sets the wrong timer. Two signals:
- Whisper's own: the mean log probability of the text's tokens, the no-speech probability and
  the compression ratio (a decoder loop compresses well);
- the words: a very short utterance that no rule understands (one or two words that are not
  a greeting or a thank-you) is usually a fragment or Whisper's guess at a noise.
A transcript no rule understands would go to the LLM, so it must be surer than one that
names a tool. Thresholds measured on Piper voices over G.711/G.722 with and without noise
(`sipassist bench asr --set`; numbers in the README).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .asr import Transcript
from .choice import words
from .numbers import has_number

REASK = "Sorry, I didn't catch that."
# Below these mean token log probabilities the text is more often wrong than right.
MIN_LOGPROB = -1.0  # for anything
# For what goes to the LLM (no rule understood it). General questions in a Piper voice over
# G.711 scored -0.04 to -0.25 (36 renderings); the same voice reversed, -0.61 to -1.9 (24),
# so -0.7 let a quarter of those through to the model ("Nairs to the field, ..." at -0.61).
MIN_LOGPROB_FOR_THE_MODEL = -0.55
MAX_COMPRESSION_RATIO = 2.4  # Whisper's own loop threshold
# A repetition cut (voice/asr.py) that threw away far more tokens than it kept: the decoder
# looped on noise ("Yes. Yes." is 4 tokens for 1 word, reversed speech gave 21 for "No,").
LOOP_TOKENS_PER_WORD = 4
NO_SPEECH_PROB = 0.5  # with a low log probability: a noise taken for words
NO_SPEECH_LOGPROB = -0.5
# Short utterances that make sense on their own though no tool rule takes them.
SHORT_AND_FINE = frozenset({
    "hello", "hi", "hey", "thanks", "thank you", "thank you very much", "yes", "no", "ok",
    "okay", "sure", "sorry", "pardon", "help", "good morning", "good afternoon",
    "good evening", "hello there", "hi there", "who are you", "what can you do",
    "tell me a joke", "repeat that", "say that again", "what", "really", "great", "cool",
})
SHORT_WORDS = 2  # this many words or fewer is "very short"


@dataclass(frozen=True)
class Doubt:
    reason: str  # for the log and the call's transcript


def doubt(transcript: Transcript | None, text: str, understood: bool) -> Doubt | None:
    """Why `text` should not be answered, or None to answer it.

    `understood`: whether a rule recognised it (a tool or goodbye); without `transcript`
    (a transcriber that gives text only) only the words are judged.
    """
    said = words(text)
    if not said:
        return None
    if transcript is not None and transcript.path != "none":
        if transcript.compression_ratio > MAX_COMPRESSION_RATIO:
            return Doubt(f"compression ratio {transcript.compression_ratio:.2f}")
        if transcript.note == "repeat-cut" and transcript.tokens > LOOP_TOKENS_PER_WORD * len(
                said) + LOOP_TOKENS_PER_WORD:  # "No, no, no, ..." cut down to "No,"
            return Doubt(f"a decoder loop of {transcript.tokens} tokens")
        if transcript.avg_logprob < MIN_LOGPROB:
            return Doubt(f"log probability {transcript.avg_logprob:.2f}")
        if (transcript.no_speech_prob > NO_SPEECH_PROB
                and transcript.avg_logprob < NO_SPEECH_LOGPROB):
            return Doubt(f"no-speech probability {transcript.no_speech_prob:.2f}")
        if not understood and transcript.avg_logprob < MIN_LOGPROB_FOR_THE_MODEL:
            return Doubt(f"log probability {transcript.avg_logprob:.2f} for the model")
    if not understood:
        joined = " ".join(said)
        if len(said) <= SHORT_WORDS and joined not in SHORT_AND_FINE:
            return Doubt(f"{len(said)} word(s) that nothing understands")
        if _TIMER_WORDS.search(joined) or (_SUM_WORDS.search(joined) and has_number(joined)):
            return Doubt("a tool's words without what it needs")  # "set a timer for"
    return None


# A tool's own words in what no rule understood: a request cut off or misheard ("set a timer
# for", "what's 25 times per blot"), which the language model would answer all the same.
_TIMER_WORDS = re.compile(r"\b(timer|remind me|reminder|countdown)\b")
_SUM_WORDS = re.compile(r"\b(plus|minus|times|divided|multiplied|percent|squared|cubed|"
                        r"square root)\b")


def transcript_text(result: Transcript | str) -> tuple[str, Transcript | None]:
    """The text of what a transcriber returned, and its details when it gave them."""
    if isinstance(result, Transcript):
        return result.text.strip(), result
    return result.strip(), None

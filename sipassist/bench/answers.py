"""The phone-line test set (answers_set.toml): loading it, rendering its audio, judging a
transcript by what the assistant would do with it.

A transcript is judged by its consequence, not only by its words: "right" when the rules
pick the expected tool with the expected arguments (or, for a general question, leave it to
the language model heard well enough), "reask" when the confidence check asks again, "wrong"
otherwise: a wrong tool or value, or a garbled question sent to the model.
"""

from __future__ import annotations

import json
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from ..voice.asr import Transcript, normalise_words, read_wav, words_error_rate, write_wav
from ..voice.numbers import words_to_digits
from .voices import VOICES, Speakers

SET_PATH = Path(__file__).with_name("answers_set.toml")
CATEGORIES = ("calc", "datetime", "weather", "timer", "goodbye", "general")
TOOLS = {"calc": "CALC", "datetime": "DATETIME", "weather": "WEATHER", "timer": "SET_TIMER"}
# A general question heard with more word errors than this reaches the model garbled.
GARBLED_WER = 0.25
_CONTRACTIONS = {"what's": "what is", "it's": "it is", "that's": "that is", "i'm": "i am",
                 "how's": "how is", "where's": "where is", "who's": "who is",
                 "okay": "ok", "bye-bye": "bye bye", "today's": "today s"}


@dataclass(frozen=True)
class Utterance:
    index: int
    category: str
    say: str
    expect: dict[str, Any] = field(default_factory=dict)


def load_set(path: Path = SET_PATH) -> list[Utterance]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    unknown = set(data) - set(CATEGORIES)
    if unknown:
        raise ValueError(f"{path}: unknown categories {sorted(unknown)}")
    found: list[Utterance] = []
    for category in CATEGORIES:
        for entry in data.get(category, []):
            expect = {k: v for k, v in entry.items() if k != "say"}
            found.append(Utterance(len(found), category, entry["say"], expect))
    return found


def comparable_words(text: str) -> list[str]:
    """Words for a fair WER: "What's" = "what is", "ten" = "10", "15%" = "15 percent"."""
    text = text.lower().replace("’", "'").replace("%", " percent")
    text = " ".join(_CONTRACTIONS.get(word, word) for word in text.split())
    return normalise_words(words_to_digits(text))


def wer(reference: str, hypothesis: str) -> float:
    return words_error_rate(comparable_words(reference), comparable_words(hypothesis))


def intent_is_right(utterance: Utterance, text: str) -> bool:
    """Whether the rules do with `text` what `utterance` asks for."""
    from ..tools.calc import CalcError, evaluate
    from ..voice.intents import GOODBYE, recognise

    intent = recognise(text)
    expect, category = utterance.expect, utterance.category
    if category == "goodbye":
        return intent is not None and intent.kind == GOODBYE
    if category == "general":
        return intent is None and wer(utterance.say, text) <= GARBLED_WER
    if intent is None or intent.tool != TOOLS[category]:
        return False
    if category == "calc":
        try:
            return abs(evaluate(intent.args["expression"]) - expect["result"]) < 1e-9
        except CalcError:
            return False
    if category == "datetime":
        return (intent.args.get("format") == expect["format"]
                and intent.args.get("timezone") == expect.get("timezone"))
    if category == "timer":
        if intent.args.get("duration") != expect["duration"]:
            return False
        errand = expect.get("errand")
        message = " ".join(normalise_words(intent.args.get("message", "")))
        return errand is None or " ".join(normalise_words(errand)) in message
    return True  # weather


OUTCOMES = ("right", "reask", "model", "wrong")


def judge(utterance: Utterance, text: str, transcript: Transcript | None) -> str:
    """"right"; "reask" (the confidence check asks again); "model" (a tool question no rule
    understood goes to the model's tool routing or the LLM); "wrong" (a wrong tool or value,
    or a general question reaching the LLM garbled)."""
    from ..voice.confidence import doubt
    from ..voice.intents import GOODBYE, recognise

    intent = recognise(text)
    # As the call does it: a goodbye ends the call whatever the doubt.
    if not (intent is not None and intent.kind == GOODBYE) and doubt(
            transcript, text, intent is not None) is not None:
        return "reask"
    if intent_is_right(utterance, text):
        return "right"
    return "model" if intent is None and utterance.category in TOOLS else "wrong"


# --- rendering ------------------------------------------------------------------------------

def audio_path(directory: Path, voice: str, utterance: Utterance) -> Path:
    return directory / voice / f"{utterance.index:03d}.wav"


def render(directory: Path, speakers: Speakers, voices: list[str], utterances: list[Utterance],
           out: TextIO = sys.stdout) -> dict[str, int]:
    """Speak every utterance in every voice into directory/<voice>/<index>.wav (16 kHz), once:
    files already there are kept. Returns the files written per voice."""
    written: dict[str, int] = {}
    for voice in voices:
        started, count = time.perf_counter(), 0
        (directory / voice).mkdir(parents=True, exist_ok=True)
        for utterance in utterances:
            path = audio_path(directory, voice, utterance)
            if path.exists():
                continue
            write_wav(path, speakers.speak(voice, utterance.say), 16000)
            count += 1
        written[voice] = count
        print(f"{voice}: {count} new files in {time.perf_counter() - started:.0f} s", file=out)
    manifest = {"voices": voices, "utterances": [u.say for u in utterances]}
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return written


def load_audio(directory: Path, voice: str, utterance: Utterance) -> np.ndarray:
    samples, rate = read_wav(audio_path(directory, voice, utterance))
    if rate != 16000:
        raise ValueError(f"{audio_path(directory, voice, utterance)}: {rate} Hz, not 16000")
    return samples


def known_voices(names: str | None) -> list[str]:
    if not names:
        return list(VOICES)
    chosen = [name.strip() for name in names.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in VOICES]
    if unknown:
        raise ValueError(f"unknown voices {unknown}; known: {', '.join(VOICES)}")
    return chosen


def rendered_clips(audio_dir: Path, voice: str, chosen: list, out) -> list | None:
    """The chosen utterances' rendered audio, or None (having said how to render them)."""
    missing = [u for u in chosen if not audio_path(audio_dir, voice, u).exists()]
    if missing:
        print(f"render the set first: sipassist bench render-set --voices {voice} "
              f"({len(missing)} files missing in {audio_dir})", file=out)
        return None
    return [load_audio(audio_dir, voice, u) for u in chosen]

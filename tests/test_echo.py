"""Echo of our own voice must not count as the caller talking; the caller's voice still must.

The echo is made as a line makes it: Piper speech through a G.711 round trip, delayed and
quieter, fed block by block with the played history the JACK bridge attaches to each block.
"""

from __future__ import annotations

import numpy as np
import pytest

from sipassist.config import ListenSettings
from sipassist.telephony.bridge import CallAudio
from sipassist.voice.echo import EchoCanceller
from sipassist.voice.resample import resample
from sipassist.voice.vad import Endpointer

from .audio_helpers import PHONE_RATE, phone_line

pytestmark = pytest.mark.models

RATE = 16000
BLOCK = 320  # 20 ms
HISTORY = int(CallAudio.PLAYED_HISTORY * RATE)  # what the bridge keeps of our output
BARGE_IN = ListenSettings(start_frames=8)


def over_the_line(samples: np.ndarray, delay_seconds: float, gain: float,
                  wideband: bool = False) -> np.ndarray:
    """`samples` as the far end sends them back: G.711 (or wideband, as G.722 would), later,
    quieter, at the bridge rate."""
    line = samples if wideband else resample(phone_line(samples, RATE), PHONE_RATE,
                                              RATE)[: len(samples)]
    delay = int(delay_seconds * RATE)
    return gain * np.concatenate([np.zeros(delay, np.float32), line])[: len(samples)]


def speech_starts(played: np.ndarray, heard: np.ndarray, cancel: bool) -> float | None:
    """When the barge-in endpointer first hears speech (seconds), feeding `heard` block by
    block with the played history; None if it never does."""
    canceller = EchoCanceller(RATE)
    endpointer = Endpointer(BARGE_IN, RATE)
    for end in range(BLOCK, min(len(played), len(heard)) + 1, BLOCK):
        history = played[max(0, end - HISTORY):end]
        history = np.pad(history, (HISTORY - len(history), 0))
        block = heard[end - BLOCK:end]
        if cancel:
            block = canceller.clean(block, history)
        endpointer.feed(block)
        if endpointer.in_speech:
            return end / RATE
    return None


@pytest.fixture(scope="module")
def our_reply(synthesizer) -> np.ndarray:
    text = ("At Storm Lake, as of nine thirty, it's forty four degrees with light rain, "
            "and the wind is from the north at twelve miles per hour.")
    return np.concatenate([np.zeros(RATE // 2, np.float32), synthesizer.synthesize(text)])


@pytest.mark.parametrize("delay, gain, wideband", [
    (0.04, 1.0, False), (0.12, 0.5, False), (0.3, 0.25, False), (0.7, 0.5, False),
    (0.12, 0.5, True)])
def test_our_own_echo_does_not_interrupt(our_reply, delay, gain, wideband):
    echo = over_the_line(our_reply, delay, gain, wideband)
    assert speech_starts(our_reply, echo, cancel=False) is not None  # it would, uncancelled
    assert speech_starts(our_reply, echo, cancel=True) is None


def test_the_caller_still_interrupts_over_the_echo(our_reply, synthesizer):
    question = phone_line(synthesizer.synthesize("What's six times seven?"), RATE)
    question = resample(question, PHONE_RATE, RATE)
    starts = 2.0
    caller = np.zeros_like(our_reply)
    caller[int(starts * RATE):int(starts * RATE) + len(question)] = question[
        : len(our_reply) - int(starts * RATE)]
    heard = over_the_line(our_reply, 0.12, 0.5) + caller
    began = speech_starts(our_reply, heard, cancel=True)
    assert began is not None and starts < began < starts + 0.5, began

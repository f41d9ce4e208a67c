"""Endpointing on real speech (Piper) with silence around it."""

from __future__ import annotations

import numpy as np
import pytest

from sipassist.config import ListenSettings
from sipassist.voice.vad import Endpointer

pytestmark = pytest.mark.models


def frames(samples: np.ndarray, size: int = 320):
    for start in range(0, len(samples) - size + 1, size):
        yield samples[start:start + size]


def test_finds_the_utterance_with_pre_roll(synthesizer):
    speech = synthesizer.synthesize("Yes, that works for me.")
    lead, tail = np.zeros(16000, np.float32), np.zeros(16000, np.float32)
    endpointer = Endpointer(ListenSettings(silence_seconds=0.5), 16000)
    found = [u for f in frames(np.concatenate([lead, speech, tail]))
             if (u := endpointer.feed(f)) is not None]
    assert len(found) == 1
    utterance = found[0]
    # It starts near the speech onset (1 s), includes pre-roll, and ends within the tail.
    assert 0.8 <= utterance.started_at <= 1.3
    duration = len(utterance.samples) / 16000
    assert len(speech) / 16000 - 0.3 <= duration <= len(speech) / 16000 + 1.0
    assert not utterance.truncated


def test_silence_gives_nothing():
    endpointer = Endpointer(ListenSettings(), 16000)
    assert all(endpointer.feed(f) is None for f in frames(np.zeros(16000 * 3, np.float32)))
    assert not endpointer.in_speech


def test_long_speech_is_cut_at_the_maximum(synthesizer):
    speech = synthesizer.synthesize("This sentence keeps going without any pause at all. " * 3)
    endpointer = Endpointer(ListenSettings(max_utterance_seconds=2.0, silence_seconds=1.0), 16000)
    found = [u for f in frames(speech) if (u := endpointer.feed(f)) is not None]
    assert found and len(found[0].samples) / 16000 <= 2.4

"""An agent's speaking speed (persona.speed): Piper speaks faster or slower, and each speed is
cached on its own, so an agent at 1.3 never gets another agent's audio at 1."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.models]

SENTENCE = "Riverside Clinic, this is Anna. How can I help you today?"


def test_speed_changes_the_length_and_is_cached_per_speed(synthesizer) -> None:
    normal = synthesizer.synthesize(SENTENCE)
    faster = synthesizer.synthesize(SENTENCE, speed=1.5)
    slower = synthesizer.synthesize(SENTENCE, speed=0.75)
    # Piper's length scale is 1/speed; pauses and edges keep it from being exact.
    assert 0.55 < len(faster) / len(normal) < 0.8
    assert 1.2 < len(slower) / len(normal) < 1.5
    hits = synthesizer.cache_hits
    assert synthesizer.synthesize(SENTENCE, speed=1.5) is faster
    assert synthesizer.synthesize(SENTENCE) is normal
    assert synthesizer.cache_hits == hits + 2

"""Endpointing: find one utterance in a stream of 20 ms frames with webrtcvad.

Speech starts after a few voiced frames in a row; it ends when the pause that follows is taken
for the end of the turn (voice/turn.py: a fixed `silence_seconds`, or a turn model's verdict),
or at `max_utterance_seconds`. A little audio before the start (pre-roll) is kept so
first syllables are not cut. Nothing here blocks: feed frames, read the result.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import webrtcvad

from ..config import ListenSettings
from .turn import TurnEnd, TurnModel

FRAME_SECONDS = 0.02


@dataclass(frozen=True)
class Utterance:
    samples: np.ndarray  # float32 at the endpointer's rate, pre-roll included
    started_at: float  # seconds since the endpointer's first frame
    ended_at: float  # when speech ended (before the trailing silence)
    truncated: bool  # cut at max_utterance_seconds


class Endpointer:
    def __init__(self, settings: ListenSettings = ListenSettings(),
                 sample_rate: int = 16000, turn: TurnModel | None = None) -> None:
        if sample_rate not in (8000, 16000, 32000, 48000):
            raise ValueError("webrtcvad takes 8, 16, 32 or 48 kHz audio")
        self.settings = settings
        self.sample_rate = sample_rate
        self.frame_size = int(sample_rate * FRAME_SECONDS)
        self._vad = webrtcvad.Vad(settings.vad_aggressiveness)
        self.turn_end = TurnEnd(settings, sample_rate, FRAME_SECONDS, turn)
        self._pre_roll: deque[np.ndarray] = deque(
            maxlen=max(1, int(settings.pre_roll_seconds / FRAME_SECONDS)))
        self._voiced_run = 0
        self._silent_run = 0
        self._speech: list[np.ndarray] | None = None
        self._frames_seen = 0
        self._speech_start_frame = 0
        self._last_voiced_frame = 0

    @property
    def in_speech(self) -> bool:
        return self._speech is not None

    @property
    def silent_frames(self) -> int:
        """Unvoiced frames in a row since the caller last spoke (0 outside speech)."""
        return self._silent_run if self._speech is not None else 0

    def so_far(self) -> Utterance | None:
        """The speech heard until now, as if it had ended here (for early transcription)."""
        if self._speech is None:
            return None
        return Utterance(samples=np.concatenate(self._speech).astype(np.float32),
                         started_at=self._speech_start_frame * FRAME_SECONDS,
                         ended_at=self._last_voiced_frame * FRAME_SECONDS, truncated=False)

    @property
    def seconds_seen(self) -> float:
        return self._frames_seen * FRAME_SECONDS

    def reset(self) -> None:
        self._pre_roll.clear()
        self._voiced_run = self._silent_run = 0
        self._speech = None

    def feed(self, frame: np.ndarray) -> Utterance | None:
        """One 20 ms float32 frame in; an Utterance out when one has just ended."""
        if len(frame) != self.frame_size:
            raise ValueError(f"frames must hold {self.frame_size} samples, got {len(frame)}")
        self._frames_seen += 1
        pcm = (np.clip(frame, -1.0, 1.0) * 32767).astype("<i2").tobytes()
        voiced = self._vad.is_speech(pcm, self.sample_rate)
        if self._speech is None:
            self._pre_roll.append(frame)
            self._voiced_run = self._voiced_run + 1 if voiced else 0
            if self._voiced_run >= self.settings.start_frames:
                self._speech = list(self._pre_roll)
                self._speech_start_frame = self._frames_seen - self._voiced_run
                self._last_voiced_frame = self._frames_seen
                self._silent_run = 0
            return None
        self._speech.append(frame)
        if voiced:
            self._silent_run = 0
            self._last_voiced_frame = self._frames_seen
        else:
            self._silent_run += 1
        too_long = len(self._speech) * FRAME_SECONDS >= self.settings.max_utterance_seconds
        if too_long or (self._silent_run and self.turn_end.over(self._speech, self._silent_run)):
            utterance = Utterance(
                samples=np.concatenate(self._speech).astype(np.float32),
                started_at=self._speech_start_frame * FRAME_SECONDS,
                ended_at=self._last_voiced_frame * FRAME_SECONDS,
                truncated=too_long and self._silent_run == 0,
            )
            self.reset()
            return utterance
        return None

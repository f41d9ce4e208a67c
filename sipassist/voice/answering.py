"""Who answered an outbound call: a person or an answering machine, from the first seconds.

A person says something short ("Hello?") and waits; a machine plays a long, unbroken greeting
and then a beep (a steady tone, usually 400-2000 Hz) or falls silent. Fed 20 ms frames of what
the far end sends, `AnsweringDetector` decides `answered_by` and says when the message should
start:

- speech that ends (a pause of HUMAN_PAUSE_SECONDS) before GREETING_SECONDS -> "human", at once;
- speech that goes on past GREETING_SECONDS -> "machine"; then the message waits for the end of
  a beep (a tone of at least BEEP_SECONDS), or for GREETING_END_SILENCE_SECONDS of silence;
- a beep before any decision -> "machine" too (some greetings are short);
- nothing within SILENT_ANSWER_SECONDS -> "unknown" (someone picked up and waits), message now;
- undecided after `decide_within` seconds, or no beep nor silence after `beep_within` seconds
  of a machine -> the message starts anyway ("unknown" if nothing was decided).

Nothing here blocks and nothing is played: feed frames, read the verdict.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import webrtcvad

FRAME_SECONDS = 0.02
HUMAN = "human"
MACHINE = "machine"
UNKNOWN = "unknown"

SILENT_ANSWER_SECONDS = 2.0  # an answer with nobody speaking gets the message after this
HUMAN_PAUSE_SECONDS = 0.7  # "Hello?" and then waiting for us
GREETING_SECONDS = 2.5  # speech longer than this without such a pause is a recorded greeting
GREETING_END_SILENCE_SECONDS = 1.5  # a machine silent this long is recording (no beep)
START_FRAMES = 3  # voiced frames in a row that start speech (as the endpointer)
VAD_AGGRESSIVENESS = 2

# The beep: one frequency holding most of the frame's energy, steady from frame to frame.
BEEP_SECONDS = 0.15
BEEP_BAND_HZ = (400.0, 2500.0)
BEEP_PURITY = 0.8  # share of the frame's energy within +-2 bins of the peak
BEEP_DRIFT_HZ = 60.0  # how far the peak may move between frames of one beep
BEEP_MIN_RMS = 0.01  # about -40 dBFS: quieter "tones" are line noise
FFT_SIZE = 1024


@dataclass(frozen=True)
class Verdict:
    answered_by: str  # HUMAN, MACHINE or UNKNOWN
    decided_at: float  # seconds after answer when answered_by was known
    message_at: float  # seconds after answer when the message may start
    beep: bool  # a beep was heard (the message starts after it)
    reason: str  # how it was decided, for the log


class ToneTracker:
    """Finds a steady sinusoid (a voicemail beep) in 20 ms frames."""

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self._window = None
        self._freqs = np.fft.rfftfreq(FFT_SIZE, 1.0 / sample_rate)
        lo, hi = BEEP_BAND_HZ
        self._band = (self._freqs >= lo) & (self._freqs <= min(hi, sample_rate / 2 - 100))
        self.run = 0  # tone frames in a row
        self._last_hz = 0.0

    def tone_hz(self, frame: np.ndarray) -> float | None:
        """The frame's tone frequency, or None when it is not a clean tone."""
        if self._window is None or len(self._window) != len(frame):
            self._window = np.hanning(len(frame))
        if float(np.sqrt(np.mean(frame.astype(np.float64) ** 2))) < BEEP_MIN_RMS:
            return None
        power = np.abs(np.fft.rfft(frame * self._window, FFT_SIZE)) ** 2
        total = float(power.sum())
        if total <= 0.0:
            return None
        in_band = np.where(self._band, power, 0.0)
        peak = int(np.argmax(in_band))
        # Hann's main lobe at this zero padding spans about +-(FFT_SIZE / frame) bins.
        spread = max(2, int(round(2 * FFT_SIZE / len(frame))))
        share = float(power[max(0, peak - spread): peak + spread + 1].sum()) / total
        return float(self._freqs[peak]) if share >= BEEP_PURITY else None

    def feed(self, frame: np.ndarray) -> bool:
        """True when this frame continues (or starts) a steady tone."""
        hz = self.tone_hz(frame)
        if hz is not None and (self.run == 0 or abs(hz - self._last_hz) <= BEEP_DRIFT_HZ):
            self.run += 1
            self._last_hz = hz
            return True
        self.run = 1 if hz is not None else 0
        self._last_hz = hz or 0.0
        return hz is not None


class AnsweringDetector:
    def __init__(self, sample_rate: int, decide_within: float, beep_within: float) -> None:
        self._vad = webrtcvad.Vad(VAD_AGGRESSIVENESS)
        self.sample_rate = sample_rate
        self.decide_within = decide_within
        self.beep_within = beep_within
        self.tone = ToneTracker(sample_rate)
        self._frames = 0
        self._voiced_run = 0
        self._speech_start: float | None = None
        self._last_voiced = 0.0
        self._beep_frames = 0  # of the longest tone so far, once it is long enough
        self.answered_by: str | None = None
        self.decided_at: float | None = None
        self.reason = ""

    @property
    def now(self) -> float:
        return self._frames * FRAME_SECONDS

    def _decide(self, answered_by: str, reason: str) -> None:
        if self.answered_by is None:
            self.answered_by, self.decided_at, self.reason = answered_by, self.now, reason

    def _verdict(self, beep: bool, reason: str = "") -> Verdict:
        if self.answered_by is None:
            self._decide(UNKNOWN, reason)
        return Verdict(self.answered_by, self.decided_at, self.now, beep,
                       reason or self.reason)

    def feed(self, frame: np.ndarray) -> Verdict | None:
        """One 20 ms float32 frame; a Verdict once the message should start."""
        self._frames += 1
        now = self.now
        in_tone = self.tone.feed(frame)
        beep_frames = int(round(BEEP_SECONDS / FRAME_SECONDS))
        if in_tone:
            if self.tone.run >= beep_frames:
                self._beep_frames = self.tone.run
                self._decide(MACHINE, "a beep")
            voiced = False  # webrtcvad calls a tone speech
        else:
            if self._beep_frames:  # the beep has just ended: the machine records now
                return self._verdict(True)
            pcm = (np.clip(frame, -1.0, 1.0) * 32767).astype("<i2").tobytes()
            voiced = self._vad.is_speech(pcm, self.sample_rate)
        self._voiced_run = self._voiced_run + 1 if voiced else 0
        if self._speech_start is None:
            if self._voiced_run >= START_FRAMES:
                self._speech_start = now - START_FRAMES * FRAME_SECONDS
                self._last_voiced = now
        elif voiced or in_tone:
            self._last_voiced = now
        speaking = self._speech_start is not None
        if self.answered_by is None:
            if not speaking and now >= SILENT_ANSWER_SECONDS:
                return self._verdict(False, "nobody spoke")
            if speaking and now - self._last_voiced >= HUMAN_PAUSE_SECONDS:
                self._decide(HUMAN, f"{self._last_voiced - self._speech_start:.1f} s of speech, "
                                    "then a pause")
                return self._verdict(False)
            if speaking and now - self._speech_start >= GREETING_SECONDS:
                self._decide(MACHINE, f"speech longer than {GREETING_SECONDS} s")
            elif now >= self.decide_within:
                return self._verdict(False, f"undecided after {self.decide_within} s")
        if self.answered_by == MACHINE and not in_tone:
            if now - self._last_voiced >= GREETING_END_SILENCE_SECONDS:
                return self._verdict(False, "the greeting ended (no beep)")
            if now - self.decided_at >= self.beep_within:
                return self._verdict(False, f"no beep within {self.beep_within} s")
        return None

"""Utterances of the test set said through a real call, for `bench asr --live` and
`bench answers`.

A daemon runs in this process (as in `bench call`); a test phone (a second baresip) dials it
and plays the set's rendered audio, one utterance after another with a gap for the answer.
Two hooks record what the daemon did, with no change to the call code: every transcription
(the very samples Whisper was given, and its Transcript) and every turn of the dialogue.
Each lands in the window of the utterance being said at the time (phone clock: from the
call's establishment), so a question cut in two or not heard at all shows as such.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..config import Settings
from ..telephony.events import CALL_CLOSED, CALL_ESTABLISHED
from ..voice.asr import read_wav
from ..voice.resample import resample
from .call import _port_block_free, _settings
from .memory import alone_mb, pss_breakdown, pss_mb
from .phone import TestPhone

log = logging.getLogger(__name__)

RATE = 16000  # the set's audio
LOUD = 0.01  # a sample this loud is speech, for the true end of an utterance
CLOSING = "Goodbye."


@dataclass
class Transcribed:
    """One transcription the daemon ran (early or at the endpoint)."""

    at: float  # seconds since the call was established, when it finished
    samples: np.ndarray
    rate: int
    result: object  # Transcript (local Whisper) or str


@dataclass
class LiveCall:
    starts: list[float]  # per utterance: when the phone starts saying it (call clock)
    ends: list[float]  # when its speech ends
    transcriptions: list[Transcribed] = field(default_factory=list)
    turns: list[tuple[float, dict]] = field(default_factory=list)
    spoken: list[tuple[float, str]] = field(default_factory=list)  # audio ready to play
    recording: np.ndarray | None = None  # what the phone heard
    recording_rate: int = 8000
    pss_idle_mb: float | None = None
    pss_call_mb: float | None = None  # the largest seen during the call
    pss_call_breakdown: dict[str, float] = field(default_factory=dict)  # at that peak
    alone_call_mb: float | None = None  # at that peak, as if no other process shared files
    closed: bool = False  # the daemon ended the call (after a goodbye)
    sent: np.ndarray | None = None  # what the test phone sent (its own recording)
    sent_rate: int = 8000

    def sent_during(self, index: int, margin: float = 0.5) -> tuple[np.ndarray, int] | None:
        """What the phone sent while saying utterance `index` (call clock, with a margin)."""
        if self.sent is None:
            return None
        first = max(0, int((self.starts[index] - margin) * self.sent_rate))
        last = int((self.ends[index] + margin) * self.sent_rate)
        return self.sent[first:last], self.sent_rate

    def _window(self, index: int) -> tuple[float, float]:
        end = self.starts[index + 1] if index + 1 < len(self.starts) else float("inf")
        return self.starts[index], end

    def caller_turns(self, index: int) -> list[dict]:
        first, last = self._window(index)
        return [turn for at, turn in self.turns if first <= at < last and turn["who"] == "caller"]

    def replies(self, index: int) -> list[dict]:
        """What the assistant said from the caller's first turn in this utterance's window
        to the next caller turn: a reply is recorded once spoken, which for a long one is
        after the next utterance began, and a late reply to the previous one is not this
        one's."""
        first, last = self._window(index)
        callers = [at for at, turn in self.turns if turn["who"] == "caller"]
        mine = [at for at in callers if first <= at < last]
        if not mine:
            return []
        later = [at for at in callers if at >= last]
        end = later[0] if later else float("inf")
        return [turn for at, turn in self.turns
                if mine[0] <= at < end and turn["who"] == "assistant"]

    def heard(self, index: int) -> list[Transcribed]:
        first, last = self._window(index)
        return [t for t in self.transcriptions if first <= t.at < last]

    def reply_ready(self, index: int) -> float | None:
        """Seconds from the end of utterance `index` to its first reply audio handed to the
        call (the filler or the answer's first sentence), on the call clock. Unlike the
        phone's recording, whose timeline shifts by every 20 ms block the loaded machine
        loses, this holds; it leaves out the way back to the caller (JACK, RTP, their
        jitter buffer: 60-120 ms on loopback)."""
        first, last = self._window(index)
        heard = [at for at, turn in self.turns
                 if first <= at < last and turn["who"] == "caller"]
        if not heard:
            return None
        ready = [at for at, _text in self.spoken if heard[0] <= at < last]
        return ready[0] - self.ends[index] if ready else None

    def onset_after(self, index: int, limit: float) -> float | None:
        """Seconds from the end of utterance `index` to the first reply audio at the phone."""
        from .call import _onset_after

        if self.recording is None:
            return None
        onset = _onset_after(self.recording, self.recording_rate, self.ends[index] + 0.05,
                             self.ends[index] + limit)
        return None if onset is None else onset - self.ends[index]


def speech_end(samples: np.ndarray) -> float:
    loud = np.nonzero(np.abs(samples) > LOUD)[0]
    return (loud[-1] + 1 if len(loud) else len(samples)) / RATE


def run_call(base: Settings, clips: list[np.ndarray], gap: float, *, farewell: bool = True,
             weather: bool = True, prepare=None) -> LiveCall:
    """Say `clips` (16 kHz) through one real call, `gap` seconds after each; then "Goodbye."
    unless the last clip is one (farewell=False). `prepare(daemon)` may adjust the daemon."""
    from ..daemon import Daemon

    with tempfile.TemporaryDirectory(prefix="sipassist-live-") as tmp:
        work = Path(tmp)
        free = (p for p in range(31000, 60000, 100) if _port_block_free(p))
        daemon_port, phone_port = next(free), next(free)
        settings = _settings(base, work, daemon_port, phone_port)
        settings = replace(settings, conversation=replace(
            settings.conversation, idle_seconds=gap + 30))
        daemon = Daemon(settings)
        if weather:
            _station_unreachable(daemon)
        if prepare is not None:
            prepare(daemon)
        live = _track_call(daemon, settings, clips, gap, farewell, work, phone_port)
    return live


def _station_unreachable(daemon) -> None:
    """No station here: the WEATHER tool answers that it cannot reach one, so a weather
    question shows as the tool's answer instead of going to the language model."""
    from ..station.errors import StationError

    class Unreachable:
        def current(self):
            raise StationError("bench: no weather station")

        def start(self):
            pass

        def close(self):
            pass

    daemon.weather.enabled = True
    daemon.weather._reader = Unreachable()


def _track_call(daemon, settings: Settings, clips, gap, farewell, work, phone_port) -> LiveCall:
    rate = settings.audio.sample_rate
    greeting = len(daemon.tts.synthesize(settings.conversation.greeting)) / rate
    pieces = [np.zeros(int((greeting + 1.5) * RATE), np.float32)]
    at = greeting + 1.5
    starts, ends = [], []
    said = list(clips)
    if farewell:
        said.append(resample(daemon.tts.synthesize(CLOSING), rate, RATE))
    for clip in said:
        starts.append(at)
        ends.append(at + speech_end(clip))
        pieces += [clip.astype(np.float32), np.zeros(int(gap * RATE), np.float32)]
        at += len(clip) / RATE + gap
    live = LiveCall(starts, ends)
    established: list[float] = []

    def clock() -> float:
        return time.monotonic() - established[0] if established else -1.0

    inbound = daemon.inbound
    transcribe = inbound.transcribe

    def recorded_transcribe(samples, sample_rate):
        result = transcribe(samples, sample_rate)
        live.transcriptions.append(Transcribed(clock(), np.array(samples, np.float32),
                                               sample_rate, result))
        return result

    inbound.transcribe = recorded_transcribe
    on_turn = inbound.on_turn

    def recorded_turn(call_id, turn):
        live.turns.append((clock(), dict(turn)))
        if on_turn is not None:
            on_turn(call_id, turn)

    inbound.on_turn = recorded_turn
    speak = inbound.speak

    def recorded_speak(text):
        audio = speak(text)
        live.spoken.append((clock(), text))
        return audio

    inbound.speak = recorded_speak
    if not daemon.start(ready_timeout=60):
        daemon.stop()
        raise RuntimeError("the daemon did not become ready")
    phone = TestPhone(work / "phone", phone_port, phone_port + 5,
                      f"{phone_port + 10}-{phone_port + 99}", answermode="auto")
    try:
        phone.set_speech(np.concatenate(pieces), RATE)
        live.pss_idle_mb = pss_mb()
        phone.command("dial", f"sip:{settings.sip.user}@{settings.sip.listen}")
        phone.wait_event(CALL_ESTABLISHED, timeout=30)
        established.append(time.monotonic())
        deadline = time.monotonic() + at + 60
        peak = 0.0
        while time.monotonic() < deadline:  # PSS every second until the call ends
            try:
                phone.wait_event(CALL_CLOSED, timeout=1.0)
                live.closed = True
                break
            except AssertionError:
                now = pss_mb() or 0.0
                if now > peak:
                    peak, live.pss_call_breakdown = now, pss_breakdown()
                    live.alone_call_mb = alone_mb()
        live.pss_call_mb = peak or None
        daemon.queue.wait_idle(timeout=30)
        live.recording, live.recording_rate = read_wav(phone.recording())
        sent = sorted(phone.recordings.glob("dump-*-enc.wav"))
        if sent:
            live.sent, live.sent_rate = read_wav(sent[-1])
    finally:
        phone.stop()
        daemon.stop()
    return live

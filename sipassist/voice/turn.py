"""End of turn: is the caller's pause the end of what they say, or only a breath?

A fixed pause cuts "what's twelve times ... eleven" at the pause and makes every finished
question wait out the whole pause. Two judges help:
- the words heard so far (the early transcript at the pause, calls/inbound.py): a question
  does not end on "times", "of", "the" ..., so after such a word the pause may run to
  `turn_max_silence_seconds` before the turn is taken to be over;
- optionally a turn-completion model, which may end a turn sooner: Smart Turn v3.2 (BSD-2, an
  8.7 MB ONNX inside the `pipecat-ai` wheel, installed without its dependencies; only the
  ONNX file is used). It reads the last 8 s as Whisper log-mel features, computed by
  faster-whisper's own numpy feature extractor (the same features to 2e-7), and gives the
  probability that the turn is complete. Asked once a short pause is heard, a finished
  sentence ends there, an unfinished one waits longer. On Piper voices through G.711 it
  scores mid-sentence pauses as complete as whole questions (`sipassist bench turn`), so it
  is off by default.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from importlib import metadata
from pathlib import Path

import numpy as np

from ..config import ListenSettings
from .resample import resample

log = logging.getLogger(__name__)

SMART_TURN = "smart-turn"
TURN_MODELS = ("off", SMART_TURN)
PIPECAT_VERSION = "1.14.0"  # the wheel carrying the ONNX: pinned, as is the file's digest
ONNX_IN_WHEEL = "pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx"
ONNX_SHA256 = "2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f"
MODEL_RATE = 16000
WINDOW_SECONDS = 8  # the model sees the last 8 s, zero-padded in front


# Words a spoken question does not end on: whoever stops after one of them has more to say.
UNFINISHED_LAST_WORDS = frozenset("""
    a an the of for to in at on by from with into about than and or but plus minus times
    multiplied divided over is are was what what's whats how my your square cube root
""".split())
# ... nor on these two ("Tell me ... why the sky is blue").
UNFINISHED_LAST_PAIRS = frozenset({("tell", "me"), ("remind", "me"), ("show", "me"),
                                   ("give", "me")})


def unfinished(text: str) -> bool:
    """Whether `text` stops on words a question cannot end on ("What's 12 times...")."""
    words = re.findall(r"[a-z0-9']+", text.lower().replace("’", "'"))
    return bool(words) and (words[-1] in UNFINISHED_LAST_WORDS
                            or tuple(words[-2:]) in UNFINISHED_LAST_PAIRS)


class TurnModelMissing(RuntimeError):
    """The model file is not installed, or is not the file we know."""


def smart_turn_file() -> Path:
    try:
        dist = metadata.distribution("pipecat-ai")
    except metadata.PackageNotFoundError:
        raise TurnModelMissing(
            f"the turn model needs pipecat-ai {PIPECAT_VERSION} (pip install --no-deps "
            f"pipecat-ai=={PIPECAT_VERSION}; install.sh does it), or set "
            "listening.turn_model = \"off\"") from None
    path = Path(dist.locate_file(ONNX_IN_WHEEL))
    if not path.is_file():
        raise TurnModelMissing(f"pipecat-ai {dist.version} has no {ONNX_IN_WHEEL}: install "
                               f"pipecat-ai=={PIPECAT_VERSION}")
    return path


def verified(path: Path) -> bytes:
    """The ONNX file's bytes, once its sha256 is the one of Smart Turn v3.2 we know."""
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != ONNX_SHA256:
        raise TurnModelMissing(f"{path} has sha256 {digest}, not the Smart Turn v3.2 file "
                               f"of pipecat-ai {PIPECAT_VERSION}: reinstall that version")
    return data


class TurnModel:
    """Smart Turn v3.2 on onnxruntime: P(the turn is complete) for the audio so far."""

    def __init__(self, path: Path | None = None, threads: int = 1) -> None:
        import onnxruntime as ort
        from faster_whisper.feature_extractor import FeatureExtractor

        started = time.perf_counter()
        data = verified(path or smart_turn_file())
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self._session = ort.InferenceSession(data, sess_options=options,
                                             providers=["CPUExecutionProvider"])
        self._features = FeatureExtractor(80, MODEL_RATE, chunk_length=WINDOW_SECONDS)
        self._lock = threading.Lock()  # the extractor keeps per-call sizes on itself
        log.info("loaded the turn model (Smart Turn v3.2) in %.2f s",
                 time.perf_counter() - started)

    def probability(self, samples: np.ndarray, sample_rate: int) -> float:
        x = resample(np.asarray(samples, np.float32), sample_rate, MODEL_RATE)
        window = WINDOW_SECONDS * MODEL_RATE
        x = x[-window:]
        if x.size < window:
            x = np.concatenate([np.zeros(window - x.size, np.float32), x])
        # Zero mean, unit variance over the window, as the model was trained (Whisper's
        # feature extractor with do_normalize).
        x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
        with self._lock:
            features = self._features(x, padding=0)
        out = self._session.run(None, {"input_features": features[None].astype(np.float32)})
        return float(np.asarray(out[0]).reshape(-1)[0])


_models: dict[str, TurnModel | None] = {}
_models_lock = threading.Lock()


def turn_model(settings: ListenSettings) -> TurnModel | None:
    """The process' one turn model for these settings, loaded on first use; None when off or
    when it cannot load (logged once: endpointing falls back to the fixed pause)."""
    name = settings.turn_model
    if name == "off":
        return None
    if name not in TURN_MODELS:
        raise ValueError(f"listening.turn_model = {name!r}: use one of {', '.join(TURN_MODELS)}")
    with _models_lock:
        if name not in _models:
            try:
                _models[name] = TurnModel()
            except Exception as exc:
                log.warning("turn model unavailable, ending turns after %.2f s of silence "
                            "instead: %s", settings.silence_seconds, exc)
                _models[name] = None
        return _models[name]


class TurnEnd:
    """Decides, frame by frame of a pause, whether the caller's turn is over.

    Without a model: after `silence_seconds`. With one: asked once the pause reaches
    `turn_check_seconds`; a complete sentence (probability >= `turn_threshold`) ends a frame
    later (so words heard at that pause still count), otherwise the turn ends after
    `turn_max_silence_seconds` (the caller stopped mid-sentence, or the model was wrong about
    a finished one). A failing model falls back to the pause. Either way, words that stop
    mid-sentence (`heard`) make the pause run to `turn_max_silence_seconds`.
    """

    def __init__(self, settings: ListenSettings, sample_rate: int, frame_seconds: float,
                 model: TurnModel | None = None) -> None:
        self.settings = settings
        self.sample_rate = sample_rate
        self.frame_seconds = frame_seconds
        self.model = model
        self.check_frame = max(1, round(settings.turn_check_seconds / frame_seconds))
        self.last_probability: float | None = None  # of the last check, for logs and benches
        self.model_ms = 0.0  # time the model took at the last check
        self._unfinished = False  # the words heard at this pause stop mid-sentence
        self._complete = False  # the model's verdict at this pause
        self.longest = max(settings.turn_max_silence_seconds, settings.silence_seconds)

    def heard(self, text: str) -> None:
        """The words said up to this pause (an early transcript)."""
        self._unfinished = unfinished(text)

    def over(self, speech: list[np.ndarray], silent_frames: int) -> bool:
        silence = silent_frames * self.frame_seconds + 1e-9
        if silent_frames == 1:  # a new pause: what was judged at the last one is void
            self._unfinished = self._complete = False
        if self._unfinished:
            return silence >= self.longest
        if self.model is None:
            return silence >= self.settings.silence_seconds
        if silence >= self.settings.turn_max_silence_seconds:
            return True
        if silent_frames == self.check_frame:
            self._complete = self._ask(speech, silent_frames)
            return False
        return self._complete and silent_frames > self.check_frame

    def _ask(self, speech: list[np.ndarray], silent_frames: int) -> bool:
        started = time.perf_counter()
        try:
            probability = self.model.probability(np.concatenate(speech), self.sample_rate)
        except Exception:
            log.exception("the turn model failed: ending turns after a fixed pause from now")
            self.model = None
            return False
        self.model_ms = (time.perf_counter() - started) * 1000
        self.last_probability = probability
        return probability >= self.settings.turn_threshold

"""What calls speak, hear and think with: the local models, or remote engines with the local
model behind them, each used through the calls-first gate (voice/gate.py)."""

from __future__ import annotations

from ..config import Settings
from ..metrics import Metrics
from .asr import Transcriber
from .gate import ModelGates
from .llm import Chat
from .remote import RemoteSynthesizer, RemoteTranscriber, WithFallback
from .routing import ToolRouter
from .tts import Synthesizer


class GatedChat:
    """The call's LLM reply, holding the LLM gate while it is generated (calls come first)."""

    def __init__(self, chat: Chat, gates: ModelGates) -> None:
        self.chat, self.gates = chat, gates

    def reply(self, history, system=None):
        replies = self.chat.reply(history) if system is None else \
            self.chat.reply(history, system=system)
        return self.gates.call_stream("llm", replies)


class GatedRouter:
    def __init__(self, router: ToolRouter, gates: ModelGates) -> None:
        self.router, self.gates = router, gates

    def route(self, text, tools):
        with self.gates.call("llm"):
            return self.router.route(text, tools)


def local_model_wanted(backend: str, settings: Settings) -> bool:
    """Load the local model: it is the backend, or the fallback of a remote one."""
    return backend == "local" or settings.models.remote_fallback


def call_engines(s: Settings, synthesizer: Synthesizer | None, transcriber: Transcriber | None,
                 metrics: Metrics):
    """(speak, transcribe) for calls: local, or remote with the local model behind.

    The local transcribe gives Whisper's Transcript (with its confidence), a remote one text:
    the dialogue takes either (voice/confidence.transcript_text)."""
    m = s.models
    fallback = metrics.remote_fallbacks.labels
    speak = synthesizer.synthesize if synthesizer else None
    if m.tts_backend == "remote":
        remote = RemoteSynthesizer(m.tts_url, m.tts_remote_model, m.tts_remote_voice,
                                   s.audio.sample_rate, m.remote_api_key,
                                   m.remote_timeout_seconds)
        speak = WithFallback("TTS", remote.synthesize, speak,
                             on_fallback=lambda kind: fallback("tts").inc())
    transcribe = transcriber.transcribe_detailed if transcriber else None
    if m.asr_backend == "remote":
        remote_asr = RemoteTranscriber(m.asr_url, m.asr_remote_model, m.remote_api_key,
                                       m.remote_timeout_seconds)
        transcribe = WithFallback("ASR", remote_asr.transcribe, transcribe,
                                  on_fallback=lambda kind: fallback("asr").inc())
    return speak, transcribe

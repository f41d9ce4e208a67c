"""The box's speech synthesis: GET /v1/tts/models, POST /v1/tts/synthesize -> audio/wav."""

from __future__ import annotations

import bottle

from ..voice.audio_files import encode_wav
from .body import json_object
from .model_service import ModelService

FIELDS = {"text", "voice", "speed", "sample_rate", "model"}


def wav_response(samples, rate: int) -> bytes:
    bottle.response.content_type = "audio/wav"
    bottle.response.set_header("X-Audio-Seconds", f"{samples.size / rate:.3f}")
    return encode_wav(samples, rate)


def install(app: bottle.Bottle, service: ModelService) -> None:
    @app.get("/v1/tts/models")
    def tts_models() -> dict:
        return {"models": service.models("tts")}

    @app.post("/v1/tts/synthesize")
    def tts_synthesize() -> bytes:
        data = json_object(FIELDS)
        samples, rate = service.synthesize(data.get("text"), data.get("voice"),
                                           data.get("speed"), data.get("sample_rate"),
                                           data.get("model"))
        return wav_response(samples, rate)

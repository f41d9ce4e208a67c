"""The box's speech synthesis: GET /v1/tts/models, POST /v1/tts/synthesize -> audio/wav."""

from __future__ import annotations

import bottle

from ..voice.audio_files import encode_wav
from .model_schemas import ModelList, SynthesizeRequest
from .model_service import ModelService
from .routing import Api, Binary

ERRORS = [400, 413, 503]


def wav_bytes(samples, rate: int) -> bytes:
    bottle.response.set_header("X-Audio-Seconds", f"{samples.size / rate:.3f}")
    return encode_wav(samples, rate)


def install(api: Api, service: ModelService) -> None:
    @api.get("/v1/tts/models", summary="List available TTS models", tags=["TTS"],
             response=ModelList)
    def tts_models() -> dict:
        return {"models": service.models("tts")}

    @api.post("/v1/tts/synthesize", summary="Convert text to audio", tags=["TTS"],
              body=SynthesizeRequest, response=Binary("audio/wav", "16-bit PCM mono WAV"),
              errors=ERRORS, budget=("audio",))
    def tts_synthesize(body: SynthesizeRequest) -> bytes:
        samples, rate = service.synthesize(body.text, body.voice, body.speed, body.sample_rate,
                                           body.model)
        return wav_bytes(samples, rate)

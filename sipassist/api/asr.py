"""The box's speech recognition: GET /v1/asr/models, POST /v1/asr/transcribe.

The audio is a WAV or FLAC file of any rate and channel count, as the multipart field `file`
(with optional form fields `language`, `prompt`, `model`) or as the raw body with a
Content-Type of audio/* (options then in the query string).
"""

from __future__ import annotations

import numpy as np

from ..voice.audio_files import AudioError, decode
from .errors import ApiError
from .model_schemas import ModelList, Transcript, TranscribeOptions
from .model_service import ModelService
from .routing import Api, Upload, UploadedFile

AUDIO_TYPES = ("audio/*", "application/octet-stream")
ERRORS = [400, 413, 415, 503]


def audio_upload(form: type | None) -> Upload:
    return Upload(AUDIO_TYPES, multipart_field="file", form=form,
                  description="A WAV or FLAC file of any rate and channel count")


def samples_of(body: UploadedFile) -> tuple[np.ndarray, int]:
    try:
        samples, rate = decode(body.data)
    except AudioError as exc:
        raise ApiError(415, f"cannot decode the audio: {exc}") from None
    if samples.size == 0:
        raise ApiError(400, "the audio file holds no samples")
    return samples, rate


def install(api: Api, service: ModelService) -> None:
    @api.get("/v1/asr/models", summary="List available ASR models", tags=["ASR"],
             response=ModelList)
    def asr_models() -> dict:
        return {"models": service.models("asr")}

    @api.post("/v1/asr/transcribe", summary="Transcribe audio to text", tags=["ASR"],
              body=audio_upload(TranscribeOptions), query=TranscribeOptions,
              response=Transcript, errors=ERRORS, budget=("audio",))
    def asr_transcribe(body: UploadedFile, query: TranscribeOptions) -> dict:
        """Options come as form fields with a multipart upload, else in the query string."""
        options = body.form if body.form is not None else query
        samples, rate = samples_of(body)
        return service.transcribe(samples, rate, options.model, options.language,
                                  options.prompt)

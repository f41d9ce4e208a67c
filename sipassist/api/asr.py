"""The box's speech recognition: GET /v1/asr/models, POST /v1/asr/transcribe.

The audio is a WAV or FLAC file of any rate and channel count, as the multipart field `file`
(with optional form fields `language`, `prompt`, `model`) or as the raw body with a
Content-Type of audio/* (options then in the query string).
"""

from __future__ import annotations

import bottle
import numpy as np

from ..voice.audio_files import AudioError, decode
from .errors import ApiError
from .model_service import ModelService

HOW_TO_SEND = ("send a WAV or FLAC file as the multipart form field 'file', or as the raw body "
               "with Content-Type audio/wav or audio/flac")


class Upload:
    """The audio and the options of a transcription request."""

    def __init__(self, samples: np.ndarray, rate: int, options: dict[str, str]) -> None:
        self.samples, self.rate, self.options = samples, rate, options


def read_upload(option_names: tuple[str, ...]) -> Upload:
    request = bottle.request
    content_type = (request.content_type or "").lower()
    if content_type.startswith("multipart/form-data"):
        upload = request.files.get("file")
        if upload is None:
            raise ApiError(400, f"the form has no field 'file': {HOW_TO_SEND}")
        data = upload.file.read()
        options = {name: request.forms.getunicode(name) for name in option_names
                   if request.forms.get(name) is not None}
    elif content_type.startswith(("audio/", "application/octet-stream")):
        data = request.body.read()
        options = {name: request.query.getunicode(name) for name in option_names
                   if request.query.get(name) is not None}
    else:
        raise ApiError(415, f"Content-Type {content_type or 'missing'} is not audio: "
                            f"{HOW_TO_SEND}")
    try:
        samples, rate = decode(data)
    except AudioError as exc:
        raise ApiError(415, f"cannot decode the audio: {exc}") from None
    if samples.size == 0:
        raise ApiError(400, "the audio file holds no samples")
    return Upload(samples, rate, options)


def install(app: bottle.Bottle, service: ModelService) -> None:
    @app.get("/v1/asr/models")
    def asr_models() -> dict:
        return {"models": service.models("asr")}

    @app.post("/v1/asr/transcribe")
    def asr_transcribe() -> dict:
        upload = read_upload(("language", "prompt", "model"))
        return service.transcribe(upload.samples, upload.rate, **upload.options)

"""OpenAI-compatible aliases, so OpenAI's client libraries work against the box unchanged.

GET /v1/models, POST /v1/chat/completions (also `stream: true`), POST /v1/audio/transcriptions,
POST /v1/audio/speech. They run on the same models, gate and checks as the native endpoints;
fields OpenAI has and the box does not use (top_p, user, ...) are taken and ignored. OpenAI's
model and voice names (whisper-1, tts-1, alloy, ...) mean the box's own.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import bottle

from ..voice.resample import resample, to_pcm16
from .asr import ERRORS as ASR_ERRORS, audio_upload, samples_of
from .errors import ApiError
from .model_schemas import (ChatRequest, OpenAIModelList, OpenAITranscribeForm, SpeechRequest,
                            Transcription)
from .model_service import Completion, ModelService
from .routing import Api, Binary, Event, EventStream, UploadedFile
from .tts import wav_bytes

AUDIO_FORMATS = ("wav", "pcm")
PCM_RATE = 24000  # OpenAI's "pcm": raw 16-bit mono at 24 kHz
TAGS = ["OpenAI-compatible"]


def _chunk(completion: Completion, cid: str, delta: dict, finish: str | None) -> Event:
    return Event({"id": cid, "object": "chat.completion.chunk", "created": completion.created,
                  "model": completion.model,
                  "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})


def _usage(completion: Completion) -> dict:
    usage = completion.usage
    prompt, output = (usage.input_tokens, usage.output_tokens) if usage else (0, 0)
    return {"prompt_tokens": prompt, "completion_tokens": output,
            "total_tokens": prompt + output}


def chunks(completion: Completion, include_usage: bool) -> Iterator[Event]:
    cid = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    try:
        yield _chunk(completion, cid, {"role": "assistant", "content": ""}, None)
        for piece in completion:
            yield _chunk(completion, cid, {"content": piece}, None)
    except ApiError as exc:
        yield Event({"error": {"message": exc.detail, "code": exc.status}})
        return
    finally:
        completion.close()
    finish = completion.usage.finish_reason if completion.usage else "stop"
    yield _chunk(completion, cid, {}, finish)
    if include_usage:
        yield Event({"id": cid, "object": "chat.completion.chunk",
                     "created": completion.created, "model": completion.model, "choices": [],
                     "usage": _usage(completion)})
    yield Event("[DONE]")


def install(api: Api, service: ModelService) -> None:
    @api.get("/v1/models", summary="List models (OpenAI-compatible)", tags=TAGS,
             response=OpenAIModelList)
    def openai_models() -> dict:
        listed = [m["id"] for kind in ("llm", "asr", "tts") for m in service.models(kind)]
        return {"object": "list", "data": [{"id": name, "object": "model", "created": 0,
                                            "owned_by": "sipassist"} for name in listed]}

    @api.post("/v1/chat/completions", summary="Chat completion (OpenAI-compatible)", tags=TAGS,
              body=ChatRequest, response=EventStream(), errors=[400, 503],
              budget=("tokens",))
    def chat_completions(body: ChatRequest):
        """JSON, or server-sent chunks with `stream: true`, as OpenAI sends them."""
        messages = service.messages([m.model_dump(exclude={"name"}) for m in body.messages])
        completion = service.completion(messages, body.model,
                                        body.max_completion_tokens or body.max_tokens,
                                        body.temperature)
        if body.stream:
            options = body.stream_options or {}
            return chunks(completion, bool(options.get("include_usage")))
        text = completion.text()
        return {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion",
                "created": completion.created, "model": completion.model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": completion.usage.finish_reason
                             if completion.usage else "stop"}],
                "usage": _usage(completion)}

    @api.post("/v1/audio/transcriptions", summary="Transcribe (OpenAI-compatible)", tags=TAGS,
              body=audio_upload(OpenAITranscribeForm), response=Transcription,
              errors=ASR_ERRORS, budget=("audio",))
    def audio_transcriptions(body: UploadedFile):
        """response_format json (default), text or verbose_json."""
        form = body.form or OpenAITranscribeForm()
        samples, rate = samples_of(body)
        result = service.transcribe(samples, rate, form.model, form.language, form.prompt)
        if form.response_format == "text":
            bottle.response.content_type = "text/plain; charset=utf-8"
            return result["text"]
        if form.response_format == "verbose_json":
            return {"task": "transcribe", "language": "english", "duration": result["duration"],
                    "text": result["text"],
                    "segments": [{"id": n, **segment}
                                 for n, segment in enumerate(result["segments"])]}
        return {"text": result["text"]}

    @api.post("/v1/audio/speech", summary="Text to speech (OpenAI-compatible)", tags=TAGS,
              body=SpeechRequest, response=Binary("audio/wav", "WAV, or raw 24 kHz PCM for pcm"),
              errors=[400, 413, 503], budget=("audio",))
    def audio_speech(body: SpeechRequest):
        fmt = body.response_format or "wav"
        if fmt not in AUDIO_FORMATS:
            raise ApiError(400, f"response_format {fmt!r} is not supported; use "
                                f"{' or '.join(AUDIO_FORMATS)}")
        samples, rate = service.synthesize(body.input, body.voice, body.speed, None, body.model,
                                           openai=True)
        if fmt == "pcm":
            return bottle.HTTPResponse(to_pcm16(resample(samples, rate, PCM_RATE)),
                                       headers={"Content-Type": "audio/pcm"})
        return wav_bytes(samples, rate)

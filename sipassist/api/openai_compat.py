"""OpenAI-compatible aliases, so OpenAI's client libraries work against the box unchanged.

GET /v1/models, POST /v1/chat/completions (also `stream: true`), POST /v1/audio/transcriptions,
POST /v1/audio/speech. They run on the same models, gate and checks as the native endpoints;
fields OpenAI has and the box does not use (top_p, user, ...) are ignored. OpenAI's model and
voice names (whisper-1, tts-1, alloy, ...) mean the box's own.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import bottle

from ..voice.resample import resample, to_pcm16
from .asr import read_upload
from .errors import ApiError
from .llms import start_sse
from .model_service import Completion, ModelService
from .tts import wav_response

AUDIO_FORMATS = ("wav", "pcm")
PCM_RATE = 24000  # OpenAI's "pcm": raw 16-bit mono at 24 kHz
TRANSCRIPT_FORMATS = ("json", "text", "verbose_json")


def json_body() -> dict:
    raw = bottle.request.body.read()
    try:
        data = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError(400, "request body must be a JSON object")
    return data


def _chunk(completion: Completion, cid: str, delta: dict, finish: str | None) -> bytes:
    body = {"id": cid, "object": "chat.completion.chunk", "created": completion.created,
            "model": completion.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return f"data: {json.dumps(body)}\n\n".encode()


def _usage(completion: Completion) -> dict:
    usage = completion.usage
    prompt, output = (usage.input_tokens, usage.output_tokens) if usage else (0, 0)
    return {"prompt_tokens": prompt, "completion_tokens": output,
            "total_tokens": prompt + output}


def chunks(completion: Completion, include_usage: bool) -> Iterator[bytes]:
    cid = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    try:
        yield _chunk(completion, cid, {"role": "assistant", "content": ""}, None)
        for piece in completion:
            yield _chunk(completion, cid, {"content": piece}, None)
    except ApiError as exc:
        yield f"data: {json.dumps({'error': {'message': exc.detail, 'code': exc.status}})}\n\n" \
            .encode()
        return
    finally:
        completion.close()
    finish = completion.usage.finish_reason if completion.usage else "stop"
    yield _chunk(completion, cid, {}, finish)
    if include_usage:
        body = {"id": cid, "object": "chat.completion.chunk", "created": completion.created,
                "model": completion.model, "choices": [], "usage": _usage(completion)}
        yield f"data: {json.dumps(body)}\n\n".encode()
    yield b"data: [DONE]\n\n"


def install(app: bottle.Bottle, service: ModelService) -> None:
    @app.get("/v1/models")
    def models() -> dict:
        listed = [m["id"] for kind in ("llm", "asr", "tts") for m in service.models(kind)]
        return {"object": "list", "data": [{"id": name, "object": "model", "created": 0,
                                            "owned_by": "sipassist"} for name in listed]}

    @app.post("/v1/chat/completions")
    def chat_completions():
        data = json_body()
        if data.get("n") not in (None, 1):
            raise ApiError(400, "n must be 1: the box makes one choice per request")
        max_tokens = data.get("max_completion_tokens", data.get("max_tokens"))
        completion = service.completion(service.messages(data.get("messages")),
                                        data.get("model"), max_tokens, data.get("temperature"))
        if data.get("stream"):
            options = data.get("stream_options") or {}
            start_sse()
            return chunks(completion, bool(isinstance(options, dict)
                                           and options.get("include_usage")))
        text = completion.text()
        return {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion",
                "created": completion.created, "model": completion.model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": completion.usage.finish_reason
                             if completion.usage else "stop"}],
                "usage": _usage(completion)}

    @app.post("/v1/audio/transcriptions")
    def transcriptions():
        upload = read_upload(("model", "language", "prompt", "response_format", "temperature"))
        options = upload.options
        fmt = options.pop("response_format", None) or "json"
        options.pop("temperature", None)
        if fmt not in TRANSCRIPT_FORMATS:
            raise ApiError(400, f"response_format {fmt!r} is not supported; use one of "
                                f"{', '.join(TRANSCRIPT_FORMATS)}")
        result = service.transcribe(upload.samples, upload.rate, **options)
        if fmt == "text":
            bottle.response.content_type = "text/plain; charset=utf-8"
            return result["text"]
        if fmt == "verbose_json":
            return {"task": "transcribe", "language": "english", "duration": result["duration"],
                    "text": result["text"],
                    "segments": [{"id": n, **segment}
                                 for n, segment in enumerate(result["segments"])]}
        return {"text": result["text"]}

    @app.post("/v1/audio/speech")
    def speech():
        data = json_body()
        fmt = data.get("response_format") or "wav"
        if fmt not in AUDIO_FORMATS:
            raise ApiError(400, f"response_format {fmt!r} is not supported; use "
                                f"{' or '.join(AUDIO_FORMATS)}")
        if data.get("model") is None:
            raise ApiError(400, "model is required (tts-1, or the box's own: GET /v1/models)")
        samples, rate = service.synthesize(data.get("input"), data.get("voice"),
                                           data.get("speed"), None, data.get("model"),
                                           openai=True)
        if fmt == "pcm":
            bottle.response.content_type = "audio/pcm"
            return to_pcm16(resample(samples, rate, PCM_RATE))
        return wav_response(samples, rate)

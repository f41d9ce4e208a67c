"""The box's language model: GET /v1/llms/models, POST /v1/llms/completion, POST /v1/llms/stream.

The completion answers in seed 001's run shape; the stream sends the same as server-sent events:
`event: delta` with `{"content": "..."}` per piece, then one `event: done` with the finish reason,
usage and execution time (or `event: error` if the model had to stop for live calls).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import bottle

from .body import json_object
from .errors import ApiError
from .model_service import Completion, ModelService

FIELDS = {"messages", "model", "max_tokens", "temperature"}


def sse(event: str, data: dict) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def start_sse() -> None:
    bottle.response.content_type = "text/event-stream"
    bottle.response.set_header("Cache-Control", "no-cache")
    bottle.response.set_header("X-Accel-Buffering", "no")


def run_shape(completion: Completion, text: str) -> dict:
    usage = completion.usage
    return {
        "choices": [{"finish_reason": usage.finish_reason if usage else "stop",
                     "message": {"role": "assistant", "content": text}}],
        "created": completion.created,
        "model": completion.model,
        "usage": {"input_tokens": usage.input_tokens if usage else 0,
                  "output_tokens": usage.output_tokens if usage else 0},
        "execution_time": round(completion.execution_time, 3),
    }


def start(service: ModelService) -> Completion:
    data = json_object(FIELDS)
    return service.completion(service.messages(data.get("messages")), data.get("model"),
                               data.get("max_tokens"), data.get("temperature"))


def events(completion: Completion) -> Iterator[bytes]:
    try:
        for piece in completion:
            yield sse("delta", {"content": piece})
    except ApiError as exc:  # the headers are sent: say it in the stream
        yield sse("error", {"detail": exc.detail, "status": exc.status})
        return
    finally:
        completion.close()
    done = run_shape(completion, "")
    yield sse("done", {key: done[key] for key in ("created", "model", "usage", "execution_time")}
              | {"finish_reason": done["choices"][0]["finish_reason"]})


def install(app: bottle.Bottle, service: ModelService) -> None:
    @app.get("/v1/llms/models")
    def llm_models() -> dict:
        return {"models": service.models("llm")}

    @app.post("/v1/llms/completion")
    def llm_completion() -> dict:
        completion = start(service)
        text = completion.text()
        return run_shape(completion, text)

    @app.post("/v1/llms/stream")
    def llm_stream():
        completion = start(service)
        start_sse()
        return events(completion)

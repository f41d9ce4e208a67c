"""The box's language model: GET /v1/llms/models, POST /v1/llms/completion, POST /v1/llms/stream.

The completion answers in seed 001's run shape; the stream sends the same as server-sent events:
`event: delta` with `{"content": "..."}` per piece, then one `event: done` with the finish reason,
usage and execution time (or `event: error` if the model had to stop for live calls).
"""

from __future__ import annotations

from collections.abc import Iterator

from .errors import ApiError
from .model_schemas import CompletionRequest, CompletionResult, ModelList, StreamEvent
from .model_service import Completion, ModelService
from .routing import Api, Event, EventStream

ERRORS = [400, 503]


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


def start(service: ModelService, body: CompletionRequest) -> Completion:
    messages = service.messages([m.model_dump() for m in body.messages])
    return service.completion(messages, body.model, body.max_tokens, body.temperature)


def events(completion: Completion) -> Iterator[Event]:
    try:
        for piece in completion:
            yield Event({"content": piece}, event="delta")
    except ApiError as exc:  # the headers are sent: say it in the stream
        yield Event({"detail": exc.detail, "status": exc.status}, event="error")
        return
    finally:
        completion.close()
    done = run_shape(completion, "")
    yield Event({"finish_reason": done["choices"][0]["finish_reason"],
                 **{key: done[key] for key in ("created", "model", "usage", "execution_time")}},
                event="done")


def install(api: Api, service: ModelService) -> None:
    @api.get("/v1/llms/models", summary="List available LLM models", tags=["LLM"],
             response=ModelList)
    def llm_models() -> dict:
        return {"models": service.models("llm")}

    @api.post("/v1/llms/completion", summary="Generate a text response", tags=["LLM"],
              body=CompletionRequest, response=CompletionResult, errors=ERRORS,
              budget=("tokens",))
    def llm_completion(body: CompletionRequest) -> dict:
        """Calls come first: while a live call needs a model this waits, then 503."""
        completion = start(service, body)
        return run_shape(completion, completion.text())

    @api.post("/v1/llms/stream", summary="Generate a streaming response", tags=["LLM"],
              body=CompletionRequest, response=EventStream(StreamEvent), errors=ERRORS,
              budget=("tokens",))
    def llm_stream(body: CompletionRequest):
        """Server-sent events: `delta` per piece, then `done` with the usage."""
        return events(start(service, body))

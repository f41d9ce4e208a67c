"""`/v1/threads`: conversations with an agent, typed or phoned (sipassist/threads/)."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any, Literal

import bottle
from pydantic import Field, field_validator

from ..calls.model import parse_iso
from ..threads import Message, ThreadError
from ..threads.runs import ANSWERED_ROLES, Run, ThreadRuns
from .errors import ApiError
from .limits import meter
from .model_schemas import CompletionResult
from .routing import Api, Event
from .schema import RequestModel, ResponseModel
from .services import Services

TAGS = ["Conversations (Threads)"]
RUN_DESCRIPTION = (
    "The message goes into the thread's history and the agent answers it. With `?stream=true` "
    "the answer comes as Server-Sent Events: `event: delta` with `{\"content\"}` for each "
    "sentence as it is ready, then `event: done` with this same run response (or `event: "
    "error`). A closed thread: 409.")


# -- schemas -------------------------------------------------------------------------------------

class ThreadNew(RequestModel):
    agent_id: str = Field(min_length=1, max_length=128, examples=["default"])
    additional_instructions: str | None = Field(
        None, max_length=4000, description="Added to the agent's instructions in this thread")


class RunMessage(RequestModel):
    role: str = Field(description="user (or tool: a tool's result); the assistant answers",
                      examples=["user"])
    content: str = Field(description="The message", examples=["Hello, how are you?"])
    name: str | None = Field(None, max_length=128, description="The user's (or tool's) name")
    tool_call_id: str | None = Field(None, max_length=128)


class RunQuery(RequestModel):
    stream: bool = Field(False, description="Answer as Server-Sent Events")

    @field_validator("stream", mode="before")
    @classmethod
    def _flag(cls, value: Any) -> Any:
        if isinstance(value, str):
            if value.lower() in ("true", "1", "yes"):
                return True
            if value.lower() in ("false", "0", "no", ""):
                return False
            raise ValueError("stream must be true or false")
        return value


class ThreadsQuery(RequestModel):
    agent_id: str | None = None
    channel: Literal["api", "call"] | None = Field(None, description="api (typed) or call")
    status: Literal["open", "closed"] | None = None
    since: str | None = Field(None, description="Only threads active since (ISO 8601 UTC)",
                              examples=["2026-11-30T00:00:00Z"])
    limit: int = Field(50, ge=1, le=1000)

    @field_validator("since")
    @classmethod
    def _since(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            moment = parse_iso(value)
        except ValueError:
            raise ValueError("since must be an ISO 8601 time, e.g. 2026-11-30T10:00:00Z") \
                from None
        if moment is None or moment.tzinfo is None:
            raise ValueError("since must be an ISO 8601 time with a zone, e.g. "
                             "2026-11-30T10:00:00Z")
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

    @field_validator("limit", mode="before")
    @classmethod
    def _limit(cls, value: Any) -> Any:
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ValueError("limit must be a whole number from 1 to 1000") from None


class HistoryMessage(ResponseModel):
    role: Literal["user", "assistant", "tool", "system"]
    content: str
    name: str | None = None
    tool_call_id: str | None = None
    created_at: str


class ThreadOut(ResponseModel):
    id: str
    organization_id: str
    user_id: str
    agent_id: str
    checkpoint: str | None
    history: list[HistoryMessage]
    deleted_at: str | None
    created_at: str
    updated_at: str
    channel: Literal["api", "call"] = Field(description="api: typed; call: a phone call")
    status: Literal["open", "closed"]
    call_id: str | None = Field(None, description="The call (GET /call/{id}) of a call thread")
    additional_instructions: str | None = None

    model_config = {"json_schema_extra": {"examples": [{
        "id": "thread_67890", "organization_id": "sipassist", "user_id": "frontdesk",
        "agent_id": "default", "checkpoint": None, "history": [], "deleted_at": None,
        "created_at": "2026-11-30T10:00:00Z", "updated_at": "2026-11-30T10:00:00Z",
        "channel": "api", "status": "open", "call_id": None}]}}


# -- routes --------------------------------------------------------------------------------------

def _answering(handler):
    """The store's refusals as API errors with the same words."""
    @functools.wraps(handler)
    def wrapper(*args, **kwargs):
        try:
            return handler(*args, **kwargs)
        except ThreadError as exc:
            raise ApiError(exc.status, str(exc), exc.headers) from None
    return wrapper


def user_of_request() -> str:
    """The API key's name ("token" for [api] token, "local" with no keys at all)."""
    current = meter()
    if current is None:
        return "local"
    kind, _, name = current.client.partition(":")
    return {"key": name, "token": "token"}.get(kind, "local")


def events(run: Run) -> Iterator[bytes]:
    try:
        for sentence in run:
            yield Event({"content": sentence + " "}, event="delta").encode()
    except Exception as exc:  # the headers are sent: say it in the stream
        yield Event({"detail": f"the answer stopped: {exc}"}, event="error").encode()
        return
    finally:
        run.close()
    yield Event(run.result(), event="done").encode()


def install(api: Api, services: Services) -> None:
    runs: ThreadRuns | None = services.threads
    limit = services.settings.threads.max_message_chars

    def ready() -> ThreadRuns:
        if runs is None:
            raise ApiError(503, "threads are not running on this box")
        return runs

    @api.post("/v1/threads", summary="Create a new conversation", tags=TAGS, body=ThreadNew,
              response=ThreadOut, status=201, errors=[404, 409, 503])
    @_answering
    def thread_create(body: ThreadNew) -> dict:
        """A thread with an agent (`agent_id` from GET /v1/agents; `default` always exists)."""
        return ready().create(body.agent_id, user_of_request(),
                              body.additional_instructions or "").to_api()

    @api.get("/v1/threads", summary="List conversations (with filters)", tags=TAGS,
             query=ThreadsQuery, response=list[ThreadOut])
    @_answering
    def thread_list(query: ThreadsQuery) -> list:
        """Newest activity first. `channel=call` lists phone calls."""
        return [t.to_api() for t in ready().store.list(query.agent_id, query.channel,
                                                       query.status, query.since, query.limit)]

    @api.get("/v1/threads/<thread_id>", summary="Get a conversation's history", tags=TAGS,
             response=ThreadOut, errors=[404])
    @_answering
    def thread_get(thread_id: str) -> dict:
        return ready().store.get(thread_id).to_api()

    def run(thread_id: str, body: RunMessage, query: RunQuery) -> Any:
        if body.role not in ANSWERED_ROLES:
            raise ApiError(400, f"role must be one of {', '.join(ANSWERED_ROLES)} (the "
                                f"assistant answers), not {body.role!r}")
        content = body.content.strip()
        if not content:
            raise ApiError(400, "content is empty: send the message's text")
        if len(content) > limit:
            raise ApiError(413, f"content is {len(content)} characters; a message holds at "
                                f"most {limit} ([threads] max_message_chars)")
        message = Message(body.role, content, body.name, body.tool_call_id)
        started = ready().start(thread_id, message, meter())
        if not query.stream:
            for _ in started:
                pass
            return started.result()
        return bottle.HTTPResponse(events(started), status=200, headers={
            "Content-Type": "text/event-stream", "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no"})

    spec = dict(tags=TAGS, body=RunMessage, query=RunQuery, response=CompletionResult,
                errors=[404, 409, 413, 429, 503], budget=("tokens",),
                description=RUN_DESCRIPTION)

    @api.post("/v1/threads/<thread_id>/run", summary="Send a message and get the answer",
              **spec)
    @_answering
    def thread_run(thread_id: str, body: RunMessage, query: RunQuery) -> Any:
        return run(thread_id, body, query)

    @api.post("/v1/threads/<thread_id>/messages", summary="Send a message to a conversation",
              **spec)
    @_answering
    def thread_message(thread_id: str, body: RunMessage, query: RunQuery) -> Any:
        return run(thread_id, body, query)

    @api.post("/v1/threads/<thread_id>/clear", summary="Reset a conversation's history",
              tags=TAGS, status=204, errors=[404, 409])
    @_answering
    def thread_clear(thread_id: str) -> str:
        ready().store.clear(thread_id)
        return ""

    @api.post("/v1/threads/<thread_id>/close", summary="Close a conversation", tags=TAGS,
              response=ThreadOut, errors=[404])
    @_answering
    def thread_close(thread_id: str) -> dict:
        """A closed thread is kept to read; a later run gets 409."""
        return ready().store.close(thread_id).to_api()

    @api.delete("/v1/threads/<thread_id>", summary="Delete a conversation", tags=TAGS,
                status=204, errors=[404, 409])
    @_answering
    def thread_delete(thread_id: str) -> str:
        ready().store.delete(thread_id)
        return ""

"""POST /call, GET /call/{id} and GET /calls."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, ValidationInfo, WithJsonSchema

from ..calls.model import CallRecord
from ..calls.queue import DuplicateCallId, QueueFull
from ..calls.targets import TargetError
from ..voice.choice import ChoiceError, ChoiceSpec
from ..webhooks import validate_callback_url
from .errors import ApiError
from .routing import Api
from .schema import RequestModel, ResponseModel, Text, WholeNumber
from .services import Services

CALL_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def _callback_url(value: str | None) -> str | None:
    if value and (problem := validate_callback_url(value)):
        raise ValueError(problem)
    return value or None


def _call_id(value: str | None) -> str | None:
    if value is not None and not CALL_ID.fullmatch(value):
        raise ValueError("call_id may hold only letters, digits, '.', '_' and '-' "
                         "(1 to 64 characters)")
    return value


def _choice(value: Any, info: ValidationInfo) -> ChoiceSpec | None:
    if value is None:
        return None
    try:
        return ChoiceSpec.from_request(value, (info.context or {})["max_choice_timeout"])
    except ChoiceError as exc:
        raise ValueError(str(exc)) from None


CHOICE_SCHEMA = {
    "type": "object",
    "description": "Ask a question after the message and collect the answer "
                   "(spoken, or a keypad digit).",
    "properties": {
        "prompt": {"type": "string", "maxLength": 1000,
                   "description": "Question to ask; default: 'Please say A or B.'"},
        "options": {"type": "array", "minItems": 1, "maxItems": 9, "items": {
            "type": "object", "required": ["value"], "additionalProperties": False,
            "properties": {
                "value": {"type": "string", "maxLength": 64},
                "synonyms": {"type": "array", "items": {"type": "string"}, "maxItems": 20},
                "digit": {"type": "string", "description": "keypad key: 0-9, * or #; "
                                                           "default its position (1, 2, ...)"},
            }}},
        "timeout_seconds": {"type": "integer", "minimum": 1, "default": 15},
    },
    "required": ["options"],
    "additionalProperties": False,
}

CallbackUrl = Annotated[Text(max_length=4096, description="Webhook for the result"),
                        AfterValidator(_callback_url)]
RingTimeout = WholeNumber(low=1, high="max_ring_timeout", unit=" of seconds",
                          description="Seconds to ring (default [calls] default_ring_timeout, "
                                      "30; at most [calls] max_ring_timeout, 300)")


class CallRequest(RequestModel):
    message: Text(required=True, description="Message to speak")
    extension: Text(required=True, max_length=512, strip=False,
                    description="Phone number, SIP extension or sip: URI")
    callback_url: CallbackUrl = None
    ring_timeout: RingTimeout = None
    call_id: Annotated[Text(max_length=64, description="Custom call ID"),
                       AfterValidator(_call_id)] = None
    choice: Annotated[Any, BeforeValidator(_choice),
                      WithJsonSchema({"anyOf": [CHOICE_SCHEMA, {"type": "null"}]})] = None

    model_config = {"json_schema_extra": {"examples": [
        {"message": "Hello! This is a reminder about your appointment tomorrow at 2pm.",
         "extension": "5551234567"},
        {"message": "Hello! Your appointment is tomorrow at 2pm.", "extension": "5551234567",
         "callback_url": "https://example.com/webhook",
         "choice": {"prompt": "Say yes to confirm or no to cancel.",
                    "options": [{"value": "confirmed", "synonyms": ["yes", "yeah", "confirm"]},
                                {"value": "cancelled", "synonyms": ["no", "nope", "cancel"]}],
                    "timeout_seconds": 15}}]}}


class CallQueued(ResponseModel):
    call_id: str
    status: str
    message: str
    queue_position: int | None

    model_config = {"json_schema_extra": {"examples": [
        {"call_id": "out-1732945860-1", "status": "queued", "message": "Call initiated",
         "queue_position": None}]}}


class CallStatus(ResponseModel):
    call_id: str
    status: str
    queued_at: str | None
    started_at: str | None
    completed_at: str | None
    duration_seconds: int | None
    choice_response: str | None
    choice_raw_text: str | None = None
    error: str | None
    direction: Literal["inbound", "outbound"] | None = None
    extension: str | None = None
    transcript: list[Any] = Field(default_factory=list)
    thread_id: str | None = Field(None, description="The call as a conversation: "
                                                    "GET /v1/threads/{thread_id}")
    agent_id: str | None = Field(None, description="An agent's call: the agent")
    outcome: str | None = Field(None, description="An agent's call: how it went, in a line")
    answered_by: Literal["human", "machine", "unknown"] | None = Field(
        None, description="Outbound: who answered, told apart as the call was answered "
                          "([calls] machine_detection)")

    model_config = {"json_schema_extra": {"examples": [
        {"call_id": "out-1732945860-1", "status": "completed",
         "queued_at": "2025-11-30T10:30:00Z", "started_at": "2025-11-30T10:30:05Z",
         "completed_at": "2025-11-30T10:30:45Z", "duration_seconds": 40,
         "choice_response": "confirmed", "error": None}]}}


def _query_limit(value: Any) -> int:
    if value is None:
        return 50
    try:
        limit = int(value)
    except (TypeError, ValueError):
        raise ValueError("limit must be a whole number") from None
    if not 1 <= limit <= 1000:
        raise ValueError("limit must be between 1 and 1000")
    return limit


def _query_direction(value: Any) -> str | None:
    if value not in (None, "", "inbound", "outbound"):
        raise ValueError("direction must be inbound or outbound")
    return value or None


class CallsQuery(RequestModel):
    limit: Annotated[int, BeforeValidator(_query_limit),
                     Field(ge=1, le=1000, description="How many (default 50)")] = 50
    direction: Annotated[Literal["inbound", "outbound"] | None,
                         BeforeValidator(_query_direction)] = None


def place(services: Services, **request: Any) -> tuple[CallRecord, int | None]:
    """Queue a call, turning each refusal into the API error that explains it."""
    try:
        return services.placer.place(**request)
    except TargetError as exc:
        raise ApiError(400, str(exc)) from None
    except DuplicateCallId as exc:
        raise ApiError(409, f"call_id '{exc}' is already used; "
                            "choose another or leave it out") from None
    except QueueFull as exc:
        raise ApiError(503, f"{exc}; try again later") from None


def install(api: Api, services: Services) -> None:
    settings = services.settings

    @api.post("/call", summary="Place an outbound notification call", tags=["Outbound Calls"],
              body=CallRequest, response=CallQueued, errors=[409, 503])
    def create_call(body: CallRequest) -> dict:
        timeout = body.ring_timeout if body.ring_timeout is not None \
            else settings.calls.default_ring_timeout
        record, position = place(
            services, extension=body.extension, message=body.message,
            callback_url=body.callback_url, ring_timeout=timeout, call_id=body.call_id or "",
            choice=body.choice.to_document() if body.choice else None)
        return {
            "call_id": record.call_id,
            "status": record.status,
            "message": "Call initiated",
            "queue_position": position,
        }

    @api.get("/calls", summary="Recent calls, newest first", tags=["Outbound Calls"],
             query=CallsQuery, response=list[CallStatus])
    def list_calls(query: CallsQuery) -> list:
        return [r.to_api() for r in services.queue.recent(query.limit, query.direction)]

    @api.get("/call/<call_id>", summary="Status of one call", tags=["Outbound Calls"],
             response=CallStatus, errors=[404])
    def get_call(call_id: str) -> dict:
        record = services.queue.get(call_id)
        if record is None:
            raise ApiError(404, f"Call '{call_id}' not found")
        out = record.to_api()
        if out["thread_id"] is None and services.threads is not None:  # a message call's
            thread = services.threads.store.for_call(call_id)          # thread comes at its end
            out["thread_id"] = thread.id if thread else None
        return out

"""POST /call and GET /call/{id}."""

from __future__ import annotations

import re
from typing import Any

import bottle

from ..calls.model import CallRecord
from ..calls.queue import DuplicateCallId, QueueFull
from ..calls.targets import TargetError
from ..config import Settings
from ..voice.choice import ChoiceError, ChoiceSpec
from ..webhooks import validate_callback_url
from . import body
from .errors import ApiError, json_response
from .services import Services

CALL_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
CALL_FIELDS = {"message", "extension", "callback_url", "ring_timeout", "call_id", "choice"}


def callback_url(data: dict) -> str | None:
    url = body.text(data, "callback_url", max_length=4096) or None
    if url is not None and (problem := validate_callback_url(url)):
        raise ApiError(400, problem)
    return url


def ring_timeout(data: dict, settings: Settings) -> int:
    return body.integer(data, "ring_timeout", default=settings.calls.default_ring_timeout,
                        low=1, high=settings.calls.max_ring_timeout)


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


def install(app: bottle.Bottle, services: Services) -> None:
    settings = services.settings

    @app.post("/call")
    def create_call() -> dict:
        data = body.json_object(CALL_FIELDS)
        message = body.text(data, "message", required=True)
        extension = body.text(data, "extension", required=True, max_length=512,
                              strip=False)
        url = callback_url(data)
        timeout = ring_timeout(data, settings)
        call_id = body.text(data, "call_id", max_length=64)
        if call_id is not None and not CALL_ID.fullmatch(call_id):
            raise ApiError(400, "call_id may hold only letters, digits, '.', '_' and '-' "
                                "(1 to 64 characters)")
        choice = None
        if data.get("choice") is not None:
            try:
                choice = ChoiceSpec.from_request(data["choice"],
                                                 settings.listening.max_choice_timeout)
            except ChoiceError as exc:
                raise ApiError(400, str(exc)) from None
        record, position = place(
            services, extension=extension, message=message, callback_url=url,
            ring_timeout=timeout, call_id=call_id or "",
            choice=choice.to_document() if choice else None)
        return {
            "call_id": record.call_id,
            "status": record.status,
            "message": "Call initiated",
            "queue_position": position,
        }

    @app.get("/calls")
    def list_calls():
        """Recent calls, newest first: ?limit=N (default 50), ?direction=inbound|outbound."""
        try:
            limit = int(bottle.request.query.get("limit", "50"))
        except ValueError:
            raise ApiError(400, "limit must be a whole number") from None
        if not 1 <= limit <= 1000:
            raise ApiError(400, "limit must be between 1 and 1000")
        direction = bottle.request.query.get("direction") or None
        if direction not in (None, "inbound", "outbound"):
            raise ApiError(400, "direction must be inbound or outbound")
        records = services.queue.recent(limit, direction)
        return json_response(200, [r.to_api() for r in records])

    @app.get("/call/<call_id>")
    def get_call(call_id: str) -> dict:
        record = services.queue.get(call_id)
        if record is None:
            raise ApiError(404, f"Call '{call_id}' not found")
        return record.to_api()

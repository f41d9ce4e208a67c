"""POST /schedule, GET /schedule, GET /schedule/{id}, DELETE /schedule/{id}."""

from __future__ import annotations

from datetime import datetime, timezone

import bottle

from ..calls.targets import TargetError, dial_uri
from ..scheduling import (
    FIELDS, PENDING, ScheduleRequestError, SchedulerFull, cancelled_response, created_response,
    detail_response, list_item, parse_request,
)
from ..tools.base import ParameterError, check_params
from . import body
from .errors import ApiError, json_response
from .services import Services


def install(app: bottle.Bottle, services: Services) -> None:
    scheduler = services.schedules.scheduler
    settings = services.settings

    def now() -> datetime:
        return datetime.now(timezone.utc)

    @app.post("/schedule")
    def create() -> dict:
        data = body.json_object(set(FIELDS))
        try:
            record = parse_request(data, now(), set(services.tools.names),
                                   settings.schedule.default_timezone)
        except ScheduleRequestError as exc:
            raise ApiError(400, str(exc)) from None
        try:
            dial_uri(record.extension, settings.sip.dial_host)
        except TargetError as exc:
            raise ApiError(400, str(exc)) from None
        if record.tool:
            try:
                check_params(services.tools.get(record.tool), record.tool_params or {})
            except ParameterError as exc:
                raise ApiError(400, f"tool_params: {exc}") from None
        try:
            record = scheduler.add(record)
        except SchedulerFull as exc:
            raise ApiError(503, str(exc)) from None
        return created_response(record, now())

    @app.get("/schedule")
    def list_all():
        moment = now()
        return json_response(200, [list_item(r, moment) for r in scheduler.list()])

    @app.get("/schedule/<schedule_id>")
    def get_one(schedule_id: str) -> dict:
        record = scheduler.get(schedule_id)
        if record is None:
            raise ApiError(404, f"Scheduled call '{schedule_id}' not found")
        return detail_response(record, now())

    @app.delete("/schedule/<schedule_id>")
    def cancel(schedule_id: str) -> dict:
        record = scheduler.get(schedule_id)
        if record is None:
            raise ApiError(404, f"Scheduled call '{schedule_id}' not found")
        if record.status != PENDING or not scheduler.cancel(schedule_id):
            raise ApiError(409, f"Scheduled call '{schedule_id}' is already {record.status}")
        return cancelled_response(schedule_id)

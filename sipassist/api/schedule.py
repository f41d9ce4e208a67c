"""POST /schedule, GET /schedule, GET /schedule/{id}, DELETE /schedule/{id}."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from pydantic import Field, SkipValidation

from ..calls.targets import TargetError, dial_uri
from ..scheduling import (
    PENDING, ScheduleRequestError, SchedulerFull, cancelled_response, created_response,
    detail_response, list_item, parse_request,
)
from ..tools.base import ParameterError, check_params
from .errors import ApiError
from .routing import Api
from .schema import RequestModel, ResponseModel
from .services import Services


class ScheduleRequest(RequestModel):
    """Either message or tool; either delay_seconds or at_time."""

    # scheduling.parse_request checks the fields (its own wording): the model only documents
    # them (SkipValidation).

    extension: SkipValidation[str] = Field(description="Phone number to call")
    message: SkipValidation[str | None] = Field(None, description="Static message (or tool)")
    tool: SkipValidation[str | None] = Field(None, description="Tool to run at call time")
    tool_params: SkipValidation[dict[str, Any] | None] = None
    delay_seconds: SkipValidation[int | None] = Field(None, description="Seconds from now")
    at_time: SkipValidation[str | None] = Field(None, description="ISO datetime or HH:MM")
    timezone: SkipValidation[str | None] = Field(
        None, description="IANA zone (default [schedule] default_timezone, America/Los_Angeles)")
    prefix: SkipValidation[str | None] = Field(None, description="Said before a tool's result")
    suffix: SkipValidation[str | None] = Field(None, description="Said after a tool's result")
    recurring: SkipValidation[str | None] = Field(None, description="daily, weekdays, weekends")
    callback_url: SkipValidation[str | None] = Field(None, description="Webhook for results")

    model_config = {"json_schema_extra": {"examples": [
        {"extension": "1001", "tool": "WEATHER", "delay_seconds": 28800,
         "prefix": "Good morning! Here is your weather."},
        {"extension": "1001", "tool": "WEATHER", "at_time": "07:00",
         "timezone": "America/Los_Angeles", "recurring": "daily", "prefix": "Good morning!"},
        {"extension": "5551234567", "message": "This is your reminder to take your medication.",
         "at_time": "2025-12-01T09:00:00", "timezone": "America/New_York"}]}}


class ScheduleCreated(ResponseModel):
    schedule_id: str
    status: str
    extension: str
    scheduled_for: str
    delay_seconds: int
    message: str
    recurring: str | None

    model_config = {"json_schema_extra": {"examples": [
        {"schedule_id": "a1b2c3d4", "status": "scheduled", "extension": "1001",
         "scheduled_for": "2025-12-01T07:00:00-08:00", "delay_seconds": 28800,
         "message": "Call scheduled for 2025-12-01T07:00:00-08:00", "recurring": None}]}}


class ScheduleItem(ResponseModel):
    schedule_id: str
    extension: str
    scheduled_for: str
    remaining_seconds: int
    message: str | None
    tool: str | None
    recurring: str | None
    status: str

    model_config = {"json_schema_extra": {"examples": [
        {"schedule_id": "a1b2c3d4", "extension": "1001",
         "scheduled_for": "2025-12-01T07:00:00-08:00", "remaining_seconds": 25200,
         "message": None, "tool": "WEATHER", "recurring": "daily", "status": "pending"}]}}


class ScheduleDetail(ScheduleItem):
    prefix: str | None
    suffix: str | None
    timezone: str
    tool_params: dict[str, Any] | None
    created_at: str | None
    last_run_at: str | None
    runs: int
    last_call_id: str | None
    callback_url: str | None


class Success(ResponseModel):
    success: bool
    message: str

    model_config = {"json_schema_extra": {"examples": [
        {"success": True, "message": "Scheduled call a1b2c3d4 cancelled"}]}}


def install(api: Api, services: Services) -> None:
    scheduler = services.schedules.scheduler
    settings = services.settings

    def now() -> datetime:
        return datetime.now(timezone.utc)

    @api.post("/schedule", summary="Schedule a call for a future time",
              tags=["Scheduled Calls"], body=ScheduleRequest, response=ScheduleCreated,
              errors=[503])
    def create_schedule(body: ScheduleRequest) -> dict:
        data = body.model_dump(exclude_unset=True, warnings=False)
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

    @api.get("/schedule", summary="List scheduled calls", tags=["Scheduled Calls"],
             response=list[ScheduleItem])
    def list_schedules() -> list:
        moment = now()
        return [list_item(r, moment) for r in scheduler.list()]

    @api.get("/schedule/<schedule_id>", summary="One scheduled call", tags=["Scheduled Calls"],
             response=ScheduleDetail, errors=[404])
    def get_schedule(schedule_id: str) -> dict:
        record = scheduler.get(schedule_id)
        if record is None:
            raise ApiError(404, f"Scheduled call '{schedule_id}' not found")
        return detail_response(record, now())

    @api.delete("/schedule/<schedule_id>", summary="Cancel a scheduled call",
                tags=["Scheduled Calls"], response=Success, errors=[404, 409])
    def cancel_schedule(schedule_id: str) -> dict:
        record = scheduler.get(schedule_id)
        if record is None:
            raise ApiError(404, f"Scheduled call '{schedule_id}' not found")
        if record.status != PENDING or not scheduler.cancel(schedule_id):
            raise ApiError(409, f"Scheduled call '{schedule_id}' is already {record.status}")
        return cancelled_response(schedule_id)

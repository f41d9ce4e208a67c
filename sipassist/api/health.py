"""GET /health and GET /queue."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .routing import Api
from .schema import ResponseModel
from .services import Services


class Health(ResponseModel):
    status: Literal["healthy", "degraded"]
    sip_registered: bool
    active_calls: int
    # Present only when degraded, so a healthy answer is exactly seed 003's.
    reason: str | None = Field(None, description="What is wrong with telephony (degraded)")
    problems: list[str] | None = Field(None, description="Storage faults, each with its fix")

    model_config = {"json_schema_extra": {"examples": [
        {"status": "healthy", "sip_registered": True, "active_calls": 0}]}}


class QueueStatus(ResponseModel):
    enabled: bool
    pending: int
    active: int
    max_concurrent: int
    total_processed: int

    model_config = {"json_schema_extra": {"examples": [
        {"enabled": True, "pending": 2, "active": 1, "max_concurrent": 1,
         "total_processed": 47}]}}


def install(api: Api, services: Services) -> None:
    @api.get("/health", summary="Service health and SIP registration", open=True,
             tags=["Health & Status"], response=Health)
    def health() -> dict:
        board = services.switchboard
        reason = board.degraded_reason
        problems = services.faults.problems() if services.faults else []
        body = {
            "status": "degraded" if reason or problems else "healthy",
            "sip_registered": board.sip_registered,
            "active_calls": board.active_calls,
        }
        if reason:
            body["reason"] = reason
        if problems:  # storage faults, each with its fix; absent when there are none
            body["problems"] = problems
        return body

    @api.get("/queue", summary="Call queue status", tags=["Health & Status"],
             response=QueueStatus)
    def queue_status() -> dict:
        return services.queue.status()

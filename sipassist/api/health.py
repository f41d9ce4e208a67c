"""GET /health and GET /queue."""

from __future__ import annotations

from typing import Literal

from .routing import Api
from .schema import ResponseModel
from .services import Services


class Health(ResponseModel):
    status: Literal["healthy", "degraded"]
    sip_registered: bool
    active_calls: int

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
        return {
            "status": "healthy" if board.ready else "degraded",
            "sip_registered": board.sip_registered,
            "active_calls": board.active_calls,
        }

    @api.get("/queue", summary="Call queue status", tags=["Health & Status"],
             response=QueueStatus)
    def queue_status() -> dict:
        return services.queue.status()

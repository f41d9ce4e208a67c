"""GET /health and GET /queue."""

from __future__ import annotations

import bottle

from .services import Services


def install(app: bottle.Bottle, services: Services) -> None:
    @app.get("/health")
    def health() -> dict:
        board = services.switchboard
        reason = board.degraded_reason
        body = {
            "status": "degraded" if reason else "healthy",
            "sip_registered": board.sip_registered,
            "active_calls": board.active_calls,
        }
        if reason:
            body["reason"] = reason
        return body

    @app.get("/queue")
    def queue_status() -> dict:
        return services.queue.status()

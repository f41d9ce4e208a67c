"""GET /health and GET /queue."""

from __future__ import annotations

import bottle

from .services import Services


def install(app: bottle.Bottle, services: Services) -> None:
    @app.get("/health")
    def health() -> dict:
        board = services.switchboard
        problems = services.faults.problems() if services.faults else []
        body = {
            "status": "healthy" if board.ready and not problems else "degraded",
            "sip_registered": board.sip_registered,
            "active_calls": board.active_calls,
        }
        if problems:  # storage faults, each with its fix; absent when there are none
            body["problems"] = problems
        return body

    @app.get("/queue")
    def queue_status() -> dict:
        return services.queue.status()

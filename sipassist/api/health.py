"""GET /health and GET /queue."""

from __future__ import annotations

import bottle

from .services import Services


def install(app: bottle.Bottle, services: Services) -> None:
    @app.get("/health")
    def health() -> dict:
        board = services.switchboard
        problems = services.faults.problems() if services.faults else []
        return {
            "status": "healthy" if board.ready and not problems else "degraded",
            "sip_registered": board.sip_registered,
            "active_calls": board.active_calls,
            "problems": problems,  # storage faults, each with its fix
        }

    @app.get("/queue")
    def queue_status() -> dict:
        return services.queue.status()

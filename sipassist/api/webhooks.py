"""GET /v1/webhooks/deliveries: webhooks waiting for their receiver, or failed for good."""

from __future__ import annotations

import bottle

from .errors import ApiError, json_response
from .services import Services

STATUSES = ("pending", "failed")


def install(app: bottle.Bottle, services: Services) -> None:
    @app.get("/v1/webhooks/deliveries")
    def deliveries():
        status = bottle.request.query.get("status") or "failed"
        if status not in STATUSES:
            raise ApiError(400, "status must be pending or failed")
        sender = services.webhooks
        items = sender.deliveries(status) if sender is not None else []
        return json_response(200, {"status": status, "count": len(items), "deliveries": items})

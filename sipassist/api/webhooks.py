"""GET /v1/webhooks/deliveries: webhooks waiting for their receiver, or failed for good."""

from __future__ import annotations

from typing import Any, Literal

from .routing import Api
from .schema import RequestModel, ResponseModel
from .services import Services


class DeliveriesQuery(RequestModel):
    status: Literal["pending", "failed"] = "failed"


class Deliveries(ResponseModel):
    status: str
    count: int
    deliveries: list[dict[str, Any]]

    model_config = {"json_schema_extra": {"examples": [
        {"status": "failed", "count": 1, "deliveries": [
            {"job_id": "9f2c", "status": "failed", "url": "http://192.168.1.5:9000/hook",
             "payload": {"call_id": "out-1732945860-1", "status": "completed"},
             "attempts": 291, "last_error": "Connection refused",
             "created_at": "2026-11-22T10:30:12Z", "next_attempt_at": None,
             "failed_at": "2026-11-23T10:30:14Z"}]}]}}


def install(api: Api, services: Services) -> None:
    @api.get("/v1/webhooks/deliveries", summary="Webhook deliveries pending or failed",
             tags=["Webhooks"], query=DeliveriesQuery, response=Deliveries)
    def webhook_deliveries(query: DeliveriesQuery) -> dict:
        """Deliveries still being retried (`pending`) or given up after the retry horizon
        (`failed`, kept for a person to see)."""
        sender = services.webhooks
        items = sender.deliveries(query.status) if sender is not None else []
        return {"status": query.status, "count": len(items), "deliveries": items}

"""GET /v1/webhooks/deliveries: webhooks waiting for their receiver, or failed for good."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from ..events import EVENTS
from ..webhook_registry import KEEP_DELIVERIES, UnknownWebhook, WebhookRegistry
from ..webhooks import validate_callback_url
from .errors import ApiError
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
    install_registry(api, services)
    @api.get("/v1/webhooks/deliveries", summary="Webhook deliveries pending or failed",
             tags=["Webhooks"], query=DeliveriesQuery, response=Deliveries)
    def webhook_deliveries(query: DeliveriesQuery) -> dict:
        """Deliveries still being retried (`pending`) or given up after the retry horizon
        (`failed`, kept for a person to see)."""
        sender = services.webhooks
        items = sender.deliveries(query.status) if sender is not None else []
        return {"status": query.status, "count": len(items), "deliveries": items}


# -- the registry (seed 000) --------------------------------------------------------------------

class WebhookCreate(RequestModel):
    url: str = Field(description="http:// or https:// URL that receives the POSTs")
    events: list[str] = Field(min_length=1, description="Events to receive: " + ", ".join(EVENTS))
    secret: str | None = Field(None, min_length=8, max_length=256,
                               description="HMAC-SHA256 key (generated if omitted)")
    active: bool = True

    model_config = {"json_schema_extra": {"examples": [
        {"url": "http://192.168.1.5:9000/hook", "events": ["call.completed", "text.received"],
         "secret": "a-long-shared-secret"}]}}


class WebhookPatch(RequestModel):
    url: str | None = None
    events: list[str] | None = Field(None, min_length=1)
    secret: str | None = Field(None, min_length=8, max_length=256)
    active: bool | None = None


class Webhook(ResponseModel):
    id: str
    url: str
    events: list[str]
    active: bool
    created_at: str
    updated_at: str
    secret: str | None = Field(None, description="Only in the answer to POST and to a PATCH "
                                                 "that sets it")

    model_config = {"json_schema_extra": {"examples": [
        {"id": "wh_3f9a1c2b4d5e6f70", "url": "http://192.168.1.5:9000/hook",
         "events": ["call.completed"], "active": True,
         "created_at": "2026-11-30T10:00:00.000Z", "updated_at": "2026-11-30T10:00:00.000Z"}]}}


class WebhookList(ResponseModel):
    count: int
    webhooks: list[Webhook]


class WebhookDelivery(ResponseModel):
    job_id: str
    event_id: str
    event: str
    status: str = Field(description="pending (being retried), delivered or failed")
    attempts: int
    last_error: str | None
    created_at: str
    updated_at: str


class WebhookDeliveries(ResponseModel):
    webhook_id: str
    count: int
    deliveries: list[WebhookDelivery]


class DeliveryLimit(RequestModel):
    limit: int = Field(20, ge=1, le=KEEP_DELIVERIES)


def _check_url(url: str) -> None:
    problem = validate_callback_url(url, "url")
    if problem:
        raise ApiError(400, problem)


def _check_events(events: list[str]) -> None:
    unknown = [e for e in events if e not in EVENTS]
    if unknown:
        raise ApiError(400, f"unknown event(s) {', '.join(map(repr, unknown))}: the events are "
                            + ", ".join(EVENTS))


def _view(doc: dict, with_secret: bool = False) -> dict:
    shown = {k: doc[k] for k in ("id", "url", "events", "active", "created_at", "updated_at")}
    if with_secret:
        shown["secret"] = doc["secret"]
    return shown


def install_registry(api: Api, services: Services) -> None:
    def registry() -> WebhookRegistry:
        if services.registry is None:
            raise ApiError(503, "the webhook registry is not running")
        return services.registry

    def lookup(webhook_id: str) -> dict:
        try:
            return registry().get(webhook_id)
        except UnknownWebhook:
            raise ApiError(404, f"no webhook {webhook_id!r}: GET /v1/webhooks lists them") \
                from None

    @api.get("/v1/webhooks", summary="List configured webhooks", tags=["Webhooks"],
             response=WebhookList)
    def list_webhooks() -> dict:
        hooks = [_view(doc) for doc in registry().all()]
        return {"count": len(hooks), "webhooks": hooks}

    @api.post("/v1/webhooks", summary="Create a webhook", tags=["Webhooks"], body=WebhookCreate,
              response=Webhook, status=201, errors=[400])
    def create_webhook(body: WebhookCreate) -> dict:
        """Each delivery is `{"id", "event", "created_at", "data"}` with the headers
        `X-Sipassist-Event` and `X-Sipassist-Signature: sha256=<hex HMAC-SHA256 of the body
        with the secret>`. The secret is shown in this answer only."""
        _check_url(body.url)
        _check_events(body.events)
        return _view(registry().create(body.url, body.events, body.secret, body.active), True)

    @api.get("/v1/webhooks/<webhook_id>", summary="Get a webhook", tags=["Webhooks"],
             response=Webhook, errors=[404])
    def get_webhook(webhook_id: str) -> dict:
        return _view(lookup(webhook_id))

    @api.patch("/v1/webhooks/<webhook_id>", summary="Update a webhook", tags=["Webhooks"],
               body=WebhookPatch, response=Webhook, errors=[400, 404])
    def update_webhook(webhook_id: str, body: WebhookPatch) -> dict:
        fields = body.model_dump(exclude_none=True)
        if "url" in fields:
            _check_url(fields["url"])
        if "events" in fields:
            _check_events(fields["events"])
        lookup(webhook_id)
        try:
            doc = registry().update(webhook_id, fields)
        except UnknownWebhook:
            raise ApiError(404, f"no webhook {webhook_id!r}") from None
        return _view(doc, "secret" in fields)

    @api.delete("/v1/webhooks/<webhook_id>", summary="Delete a webhook", tags=["Webhooks"],
                response=Webhook, errors=[404])
    def delete_webhook(webhook_id: str) -> dict:
        """Deliveries already queued still go out."""
        doc = lookup(webhook_id)
        try:
            registry().delete(webhook_id)
        except UnknownWebhook:
            raise ApiError(404, f"no webhook {webhook_id!r}") from None
        return _view(doc)

    @api.get("/v1/webhooks/<webhook_id>/deliveries", summary="A webhook's last deliveries",
             tags=["Webhooks"], query=DeliveryLimit, response=WebhookDeliveries, errors=[404])
    def webhook_deliveries_of(webhook_id: str, query: DeliveryLimit) -> dict:
        lookup(webhook_id)
        items = registry().deliveries(webhook_id, query.limit)
        return {"webhook_id": webhook_id, "count": len(items), "deliveries": items}

    @api.post("/v1/webhooks/<webhook_id>/test", summary="Send a ping to a webhook",
              tags=["Webhooks"], response=WebhookDelivery, status=202, errors=[404],
              allow_empty_body=True)
    def test_webhook(webhook_id: str) -> dict:
        """Queues a `ping` event (sent even to an inactive webhook); its outcome shows in
        the webhook's deliveries."""
        lookup(webhook_id)
        entry = registry().ping(webhook_id)
        return {k: v for k, v in entry.items() if k != "webhook_id"}

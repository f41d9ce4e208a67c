"""GET /metrics: Prometheus text format; needs a key unless `[api] metrics_open = true`."""

from __future__ import annotations

from ..metrics import CONTENT_TYPE, Metrics
from .routing import Api, Binary


def install(api: Api, metrics: Metrics, open_access: bool) -> None:
    @api.get("/metrics", summary="Metrics in Prometheus' text format", tags=["Health & Status"],
             response=Binary(CONTENT_TYPE), open=open_access)
    def prometheus() -> bytes:
        """Calls, turn latencies, API model work, webhooks, rate-limit refusals, memory."""
        return metrics.exposition()

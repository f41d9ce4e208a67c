"""GET /metrics: Prometheus text format; needs a key unless `[api] metrics_open = true`."""

from __future__ import annotations

import bottle

from ..metrics import CONTENT_TYPE, Metrics


def install(app: bottle.Bottle, metrics: Metrics, open_access: bool) -> None:
    @app.get("/metrics", open=open_access)
    def prometheus() -> bytes:
        bottle.response.content_type = CONTENT_TYPE
        return metrics.exposition()

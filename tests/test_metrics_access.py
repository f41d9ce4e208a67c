"""GET /metrics behind the key unless `[api] metrics_open`, and the gate's 429s counted in it."""

from __future__ import annotations

import http.client
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sipassist.api import metrics as metrics_route
from sipassist.api.gate import Gate
from sipassist.api.keys import KeyStore
from sipassist.api.routing import Api
from sipassist.api.limits import RateLimiter
from sipassist.api.server import ApiServer
from sipassist.config import ApiSettings, LimitSettings
from sipassist.metrics import Metrics

TOKEN = "metrics-test-token-0123456789"


class Box:
    def __init__(self, tmp: Path, open_access: bool) -> None:
        api = Api()

        @api.get("/thing", summary="Something limited")
        def thing() -> dict:
            return {"ok": True}

        self.metrics = Metrics()
        metrics_route.install(api, self.metrics, open_access)
        settings = ApiSettings(token=TOKEN, limits=LimitSettings(requests_per_minute=1),
                               metrics_open=open_access)
        # A frozen clock: a minute's window must not roll over between the requests.
        self.gate = Gate(api, settings, KeyStore(tmp), RateLimiter(clock=lambda: 1_800_000_000.0))
        self.metrics.watch(lambda: {"rate_limited": self.gate.refusals[429]}, lambda: {})
        self.server = ApiServer(self.gate, "127.0.0.1", 0, settings, self.gate.screen)
        self.server.start()

    def get(self, path: str, key: str | None = None) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=10)
        try:
            conn.request("GET", path, headers={"api-key": key} if key else {})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()


@pytest.mark.parametrize("open_access", [False, True], ids=["behind-the-key", "open"])
def test_metrics_key_and_rate_limit_refusals(tmp_path, open_access):
    box = Box(tmp_path, open_access)
    try:
        assert box.get("/metrics")[0] == (200 if open_access else 401)
        # Behind the key, a scrape is a request like any other (the key's one this minute).
        status, text = box.get("/metrics", TOKEN)
        assert status == 200 and refusals(text) == 0
        statuses = [box.get("/thing", TOKEN)[0] for _ in range(2)]
        assert statuses == ([200, 429] if open_access else [429, 429])
        assert refusals(box.metrics.exposition()) == statuses.count(429)
    finally:
        box.server.stop()


def refusals(text: bytes) -> float:
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            if sample.name == "sipassist_rate_limit_refusals_total":
                return sample.value
    raise AssertionError("no sipassist_rate_limit_refusals_total")

"""Prometheus metrics of one daemon, on a registry of its own (tests run several daemons).

Counters are bumped where things happen (calls ending, turns, webhooks, API model requests,
refusals); gauges that mirror state (active calls, the queue, API requests waiting for a model)
are read at scrape time, so they are never stale.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from prometheus_client import (CollectorRegistry, Counter, Histogram, ProcessCollector,
                               generate_latest)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

# Seconds: a phone turn is 0.3-3 s, an API request up to a minute.
TURN_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
API_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _StateCollector:
    def __init__(self, state: Callable[[], dict[str, float]],
                 waiting: Callable[[], dict[str, int]]) -> None:
        self.state = state
        self.waiting = waiting

    def collect(self):
        state = self.state()
        active = GaugeMetricFamily("sipassist_active_calls", "Calls in progress now")
        active.add_metric([], state.get("active", 0))
        yield active
        pending = GaugeMetricFamily("sipassist_queue_length", "Outbound calls waiting their turn")
        pending.add_metric([], state.get("pending", 0))
        yield pending
        xruns = CounterMetricFamily("sipassist_audio_xruns",
                                    "JACK cycles the call audio missed (heard as clicks)")
        xruns.add_metric([], state.get("xruns", 0))
        yield xruns
        limited = CounterMetricFamily("sipassist_rate_limit_refusals",
                                      "Requests refused with 429 by the rate limits")
        limited.add_metric([], state.get("rate_limited", 0))
        yield limited
        waiting = GaugeMetricFamily("sipassist_api_model_waiting",
                                    "API requests waiting for a model (calls come first)",
                                    labels=["model"])
        for model, count in self.waiting().items():
            waiting.add_metric([model], count)
        yield waiting


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)  # process_resident_memory_bytes and friends
        self.calls = Counter("sipassist_calls", "Calls ended, by direction and final status",
                             ["direction", "status"], registry=r)
        self.turn = Histogram("sipassist_turn_seconds",
                              "Latency of a call's answer, by step: voice_to_voice (end of the "
                              "caller's speech to the first answer audio, as the daemon sees it), "
                              "asr, first_llm_sentence (when the model answers), first_tts_audio",
                              ["step"], buckets=TURN_BUCKETS, registry=r)
        self.api_requests = Counter("sipassist_api_model_requests",
                                    "ASR/LLM/TTS API requests, by model and HTTP status",
                                    ["model", "status"], registry=r)
        self.api_seconds = Histogram("sipassist_api_model_seconds",
                                     "Duration of successful ASR/LLM/TTS API requests",
                                     ["model"], buckets=API_BUCKETS, registry=r)
        self.api_refused = Counter("sipassist_api_model_busy",
                                   "API requests refused with 503 because calls needed the model",
                                   ["model"], registry=r)
        self.llm_tokens = Counter("sipassist_api_llm_tokens", "LLM tokens served by the API",
                                  ["kind"], registry=r)
        self.audio_seconds = Counter("sipassist_api_audio_seconds",
                                     "Audio seconds transcribed or synthesised by the API",
                                     ["model"], registry=r)
        self.webhooks = Counter("sipassist_webhook_deliveries",
                                "Webhook delivery attempts, by result (delivered, failed: to be "
                                "retried, dropped: given up)", ["result"], registry=r)
        self.remote_fallbacks = Counter("sipassist_remote_fallbacks",
                                        "Remote ASR/TTS failures answered by the local model",
                                        ["model"], registry=r)
        self._lock = threading.Lock()
        self._asr_waited: dict[str, float] = {}  # call_id -> ASR waited for after its endpoint
        for model in ("asr", "llm", "tts"):  # present at 0 from the start
            self.api_refused.labels(model)
        for result in ("delivered", "failed", "dropped"):
            self.webhooks.labels(result)

    def watch(self, state: Callable[[], dict[str, float]],
              waiting: Callable[[], dict[str, int]]) -> None:
        self.registry.register(_StateCollector(state, waiting))

    def call_ended(self, direction: str, status: str) -> None:
        self.calls.labels(direction or "outbound", status).inc()

    def observe_turn(self, call_id: str, turn: dict, endpointing_seconds: float) -> None:
        """A transcript turn (calls/inbound.py) as it is recorded."""
        timings = turn.get("timings") or {}
        if turn.get("who") == "caller":
            waited = timings.get("asr_ms")  # early ASR ran while the endpointer waited
            self.turn.labels("asr").observe((waited or timings.get("early_asr_ms", 0)) / 1000)
            with self._lock:
                self._asr_waited[call_id] = (waited or 0) / 1000
            return
        with self._lock:
            waited = self._asr_waited.pop(call_id, 0.0)
        if "decide_ms" not in timings:
            return
        decide, tts = timings["decide_ms"] / 1000, timings.get("tts_first_ms", 0) / 1000
        if not turn.get("tool"):
            self.turn.labels("first_llm_sentence").observe(decide)
        self.turn.labels("first_tts_audio").observe(tts)
        self.turn.labels("voice_to_voice").observe(endpointing_seconds + waited + decide + tts)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

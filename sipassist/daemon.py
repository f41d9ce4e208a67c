"""The daemon: builds the services from settings, starts them in order, stops them cleanly."""

from __future__ import annotations

import logging
import signal
import time
import threading
from dataclasses import dataclass, replace
from pathlib import Path

from .api.app import build_app
from .api.gate import listen_host
from .api.keys import KeyStore
from .api.server import ApiServer
from .api.services import Services
from .calls.model import CallRecord
from .calls.placing import CallPlacer
from .calls.queue import CallQueue
from .calls.runner import ActiveCalls, CallRunner
from .calls.scheduled import ScheduledCalls
from .config import Settings
from .calls.inbound import InboundCalls
from .models import ModelNotFound, resolve_asr_model, resolve_llm_model, resolve_tts_voice
from .voice.llm import Chat, LocalChat, RemoteChat
from .voice.routing import ToolRouter
from .store import Store
from .telephony.switchboard import Switchboard
from .timezones import system_timezone
from .tools.calc import CalcTool
from .tools.datetime_tool import DateTimeTool
from .tools.registry import ToolRegistry
from .tools.timer import TimerTool
from .tools.weather import WeatherTool
from .api.model_service import ModelService
from .metrics import Metrics
from .voice.asr import Transcriber
from .voice.completion import Completer
from .voice.engines import GatedChat, GatedRouter, call_engines, local_model_wanted
from .voice.gate import GateSettings, ModelGates
from .voice.tts import Synthesizer
from .watchdog import Watchdog, notify, watchdog_interval
from .webhooks import WebhookSender

log = logging.getLogger(__name__)


def load_router(settings: Settings) -> ToolRouter | None:
    """The local model's tool choice, if the local model is there and routing is on."""
    llm = settings.llm
    if llm.backend != "local" or not llm.tool_routing:
        return None
    try:
        model = resolve_llm_model(llm.model, settings.paths.models)
        return ToolRouter(model.path, llm.threads)
    except (ModelNotFound, ImportError):
        return None  # load_chat has said why


def load_chat(settings: Settings) -> Chat | None:
    """The configured language model, or None (then only the plain intents are answered)."""
    llm = settings.llm
    if llm.backend == "none":
        return None
    if llm.backend == "remote":
        return RemoteChat(llm.url, llm.remote_model, llm.api_key, max_tokens=llm.max_tokens)
    try:
        model = resolve_llm_model(llm.model, settings.paths.models)
    except ModelNotFound as exc:
        log.warning("no language model: %s; answering plain questions only", exc)
        return None
    try:
        log.info("loading the language model %s", model.path.name)
        return LocalChat(model.path, llm.threads, llm.context, llm.max_tokens)
    except ImportError:
        log.warning("llama-cpp-python is not installed (pip install 'sipassist[llm]'); "
                    "answering plain questions only")
        return None


@dataclass
class Daemon:
    settings: Settings
    # Loaded models may be passed in (tests share them); otherwise they are loaded here.
    synthesizer: Synthesizer | None = None
    transcriber: Transcriber | None = None
    chat: Chat | None = None
    router: ToolRouter | None = None
    completer: Completer | None = None  # the API's LLM context; else loaded on first use

    def __post_init__(self) -> None:
        s = self.settings
        for directory in (s.paths.state_dir, s.paths.runtime_dir):
            directory.mkdir(parents=True, exist_ok=True)
        self.metrics = Metrics()
        self.calls_store = Store(s.calls_db)
        self.webhooks_store = Store(s.webhooks_db)
        self.webhooks = WebhookSender(self.webhooks_store, s.webhooks)
        self.webhooks.on_result = lambda result: self.metrics.webhooks.labels(result).inc()
        self.switchboard = Switchboard(s)
        if self.synthesizer is None and local_model_wanted(s.models.tts_backend, s):
            log.info("loading the Piper voice")
            voice = resolve_tts_voice(s.models, s.paths.models)
            self.synthesizer = Synthesizer(voice, s.audio.sample_rate)
        self.tts = self.synthesizer
        if self.transcriber is None and local_model_wanted(s.models.asr_backend, s):
            log.info("loading the Whisper model")
            self.transcriber = Transcriber(resolve_asr_model(s.models, s.paths.models))
        self.active = ActiveCalls()
        api = s.model_api
        self.gates = ModelGates(
            GateSettings(api.api_wait_seconds, api.api_queue, api.call_linger_seconds),
            caller_speaking=self.active.any_speaking,
            on_refused=lambda model: self.metrics.api_refused.labels(model).inc())
        speak, transcribe = call_engines(s, self.synthesizer, self.transcriber, self.metrics)
        self.speak = self.gates.calls_first("tts", speak)
        self.transcribe = self.gates.calls_first("asr", transcribe)
        self.runner = CallRunner(self.switchboard, self.speak, self.transcribe, s.calls,
                                 s.listening, s.audio.sample_rate, self.active)
        self.queue = CallQueue(self.calls_store, s.queue, self.runner,
                               can_dial=self.switchboard.wait_ready,
                               on_finished=self._call_finished)
        self.queue.on_refused = lambda record: self.metrics.call_ended(record.direction,
                                                                       record.status)
        self.placer = CallPlacer(self.queue, s)
        zone = s.tools.timezone or system_timezone()
        # The station's readings are spoken in its own zone, else the box's.
        self.weather = WeatherTool(replace(s.station, timezone=s.station.timezone or zone))
        self.tools = ToolRegistry([CalcTool(), DateTimeTool(zone), self.weather])
        self.schedules_store = Store(s.schedules_db)
        self.schedules = ScheduledCalls(self.schedules_store, self.placer, self.tools,
                                        self.webhooks, s.schedule)
        # The timer is a one-shot schedule; schedules may in turn run tools.
        self.tools.add(TimerTool(self.schedules.scheduler, zone))
        if self.chat is None:
            self.chat = load_chat(s)
        if self.router is None and self.chat is not None:
            self.router = load_router(s)
        if self.router is not None:
            self.router.warm_up(self.tools)
        self.inbound = InboundCalls(
            self.switchboard, self.queue, self.tools, self.speak, self.transcribe,
            GatedChat(self.chat, self.gates) if self.chat is not None else None, s, self.active,
            self._call_finished, GatedRouter(self.router, self.gates) if self.router else None)
        endpointing = s.listening.silence_seconds
        self.inbound.on_turn = lambda call_id, turn: self.metrics.observe_turn(call_id, turn,
                                                                               endpointing)
        self.switchboard.on_incoming = self.inbound.handle
        self.keys = KeyStore(s.paths.state_dir)
        self.models = self._model_service()
        services = Services(settings=s, switchboard=self.switchboard, queue=self.queue,
                            placer=self.placer, active=self.active, speak=self.speak,
                            tools=self.tools, schedules=self.schedules, keys=self.keys,
                            models=self.models, metrics=self.metrics)
        self.app = build_app(services)
        self.metrics.watch(
            lambda: {**self.queue.status(), "xruns": self.switchboard.bridge.xruns,
                     "rate_limited": self.app.refusals[429]},
            self.gates.waiting)
        host, warning = listen_host(s.api, self.keys)
        if warning:
            log.warning("%s", warning)
        self.api = ApiServer(self.app, host, s.api.port, s.api, self.app.screen)
        self._stop_requested = threading.Event()
        self._stopped = False
        self.watchdog: Watchdog | None = None

    def _model_service(self) -> ModelService:
        """The box's local models for the API (a remote backend's are not offered again)."""
        s = self.settings
        llm_name = loader = None
        if self.completer is not None:
            llm_name, loaded = self.completer.name, self.completer
            loader = lambda: loaded  # noqa: E731
        elif s.llm.backend == "local" and isinstance(self.chat, LocalChat):
            llm_name = s.llm.model if "/" not in s.llm.model else Path(s.llm.model).stem
            loader = lambda: Completer(  # noqa: E731
                resolve_llm_model(s.llm.model, s.paths.models), s.llm.threads, s.llm.context)
        return ModelService(s.model_api, self.gates, self.metrics, llm_name, loader,
                            s.llm.context, self.transcriber, self.synthesizer)

    def _call_finished(self, record: CallRecord) -> None:
        self.metrics.call_ended(record.direction, record.status)
        if record.callback_url:
            self.webhooks.send(record.callback_url, record.webhook_payload())
        self.schedules.call_finished(record)

    def start(self, ready_timeout: float | None = None) -> bool:
        """Start everything; True once telephony (and registration, if any) is up."""
        notify("STATUS=Starting jackd and baresip")
        self.webhooks.start()
        self.switchboard.start()
        self.queue.start()
        self.schedules.start()
        if self.weather.enabled:
            self.weather.start()
        self.api.start()
        ready = self._wait_healthy(ready_timeout)
        if ready:
            log.info("sipassist is ready")
            notify(f"READY=1\nSTATUS={self.status_line()}")
        interval = watchdog_interval()
        if interval:
            self.watchdog = Watchdog(self.switchboard.health_problem, self.status_line, interval)
            self.watchdog.start()
        return ready

    def _wait_healthy(self, timeout: float | None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while deadline is None or time.monotonic() < deadline:
            if self.switchboard.wait_ready(1.0) and self.switchboard.health_problem() is None:
                return True
            if self._stop_requested.is_set():
                return False
        return False

    def status_line(self) -> str:
        queue = self.queue.status()
        registered = "registered" if self.switchboard.sip_registered else "not registered"
        return (f"Ready: API on port {self.api.port}, SIP {registered}, "
                f"{queue['active']} active call(s), {queue['pending']} queued")

    def stop(self) -> None:
        if self._stopped:  # a test may stop a daemon early; the fixture stops it again
            return
        self._stopped = True
        notify("STOPPING=1")
        log.info("stopping")
        if self.watchdog:
            self.watchdog.stop()
        self.api.stop()
        self.schedules.stop()
        self.queue.stop(timeout=2)
        self.switchboard.stop()
        self.queue.stop(timeout=10)
        self.webhooks.stop()
        self.weather.close()
        self.calls_store.close()
        self.webhooks_store.close()
        self.schedules_store.close()

    def run_until_signalled(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: self._stop_requested.set())
        self.start()
        self._stop_requested.wait()
        self.stop()

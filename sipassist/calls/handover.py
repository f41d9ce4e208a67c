"""A caller asked to be put through (the TRANSFER tool): after the assistant has said where
the call goes, a blind transfer (SIP REFER) of the call, as PUT /v1/calls/{id}/route does."""

from __future__ import annotations

import logging

import numpy as np

from ..telephony.ctrl import CtrlError
from ..telephony.switchboard import Switchboard
from ..tools.base import ToolResult
from .session import CallSession, Transfer

log = logging.getLogger(__name__)

TRANSFER_WAIT_SECONDS = 30  # for the far end to follow the REFER and report how it went


def failed_message(name: str) -> str:
    return f"Sorry, I couldn't put you through to {name}. Is there anything else?"


def transfer_asked(result: ToolResult | None) -> tuple[str, str] | None:
    """(SIP URI, spoken name) a TRANSFER tool result asks the call to go to, if any."""
    if result is None or not result.success or "transfer_to" not in result.data:
        return None
    return result.data["transfer_to"], result.data["name"]


def hand_over(switchboard: Switchboard, session: CallSession, uri: str,
              pause_seconds: float) -> Transfer:
    """After `pause_seconds` of silence (what was said last is still on its way to the
    caller, and a followed REFER closes the call at once), REFER the far end to `uri` and
    wait for the outcome. If the far end follows it, the call closes and session.check()
    raises CallEnded (the call ends `transferred`); otherwise the Transfer holds the error
    (the record gets `TRANSFER_FAILED: ...`) and the call goes on."""
    session.play(np.zeros(int(pause_seconds * session.audio.sample_rate), np.float32))
    transfer = session.transfer = Transfer(uri)
    try:
        switchboard.transfer(session.call, uri)
    except CtrlError as exc:
        transfer.error = str(exc)
        transfer.done.set()
    session.wait_transfer(TRANSFER_WAIT_SECONDS)
    if not transfer.done.is_set():
        transfer.error = f"the far end did not report the transfer within {TRANSFER_WAIT_SECONDS} s"
        transfer.done.set()
    if transfer.error:
        log.warning("TRANSFER_FAILED to %s: %s", uri, transfer.error,
                    extra={"CALL_ID": session.call_id})
    return transfer

"""What the API handlers may use: services, never baresip directly."""

from __future__ import annotations

from dataclasses import dataclass

from ..calls.queue import CallQueue
from ..calls.runner import ActiveCalls, Speak
from ..config import Settings
from ..telephony.switchboard import Switchboard


@dataclass(frozen=True)
class Services:
    settings: Settings
    switchboard: Switchboard
    queue: CallQueue
    active: ActiveCalls
    speak: Speak

"""What the API handlers may use: services, never baresip directly."""

from __future__ import annotations

from dataclasses import dataclass

from ..calls.placing import CallPlacer
from ..calls.queue import CallQueue
from ..calls.scheduled import ScheduledCalls
from ..calls.runner import ActiveCalls, Speak
from ..config import Settings
from ..telephony.switchboard import Switchboard
from ..metrics import Metrics
from ..tools.registry import ToolRegistry
from .keys import KeyStore
from .model_service import ModelService


@dataclass(frozen=True)
class Services:
    settings: Settings
    switchboard: Switchboard
    queue: CallQueue
    placer: CallPlacer
    active: ActiveCalls
    speak: Speak
    tools: ToolRegistry
    schedules: ScheduledCalls
    keys: KeyStore | None = None  # None: the keys file in the state directory
    models: ModelService | None = None  # the box's models as /v1 endpoints
    metrics: Metrics | None = None

"""What the API handlers may use: services, never baresip directly."""

from __future__ import annotations

from dataclasses import dataclass

from ..agents.engine import AgentEngine
from ..agents.store import AgentStore
from ..calls.placing import CallPlacer
from ..calls.queue import CallQueue
from ..calls.runner import ActiveCalls, Speak
from ..calls.scheduled import ScheduledCalls
from ..config import Settings
from ..faults import StorageFaults
from ..knowledge import KnowledgeBase
from ..metrics import Metrics
from ..telephony.switchboard import Switchboard
from ..texts import Texts
from ..threads.runs import ThreadRuns
from ..tools.registry import ToolRegistry
from ..webhook_registry import WebhookRegistry
from ..webhooks import WebhookSender
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
    faults: StorageFaults | None = None  # storage problems, for GET /health
    webhooks: WebhookSender | None = None  # for GET /v1/webhooks/deliveries
    knowledge: KnowledgeBase | None = None  # None: no /v1/knowledge (503)
    registry: WebhookRegistry | None = None  # /v1/webhooks subscriptions
    texts: Texts | None = None  # /v1/texts (SIP MESSAGE)
    models: ModelService | None = None  # the box's models as /v1 endpoints
    metrics: Metrics | None = None
    agents: AgentStore | None = None  # None: no /v1/agents (503)
    engine: AgentEngine | None = None  # answers for agents (threads use it)
    threads: ThreadRuns | None = None  # None: no /v1/threads (503)

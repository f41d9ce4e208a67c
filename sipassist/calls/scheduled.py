"""Scheduled calls wired to the rest: a due schedule runs its tool, then places the call.

The schedule's webhook goes out when the call it placed has ended (with that call's status),
or at once when a run failed or was missed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timezone

from ..config import ScheduleSettings
from ..events import Publish, ignore
from ..scheduling import COMPLETED, ScheduleRecord, Scheduler, webhook_payload
from ..store import Store
from ..tools.registry import ToolRegistry
from ..webhooks import WebhookSender
from .model import CallRecord
from .placing import CallPlacer
from .queue import DuplicateCallId

log = logging.getLogger(__name__)

CALL_PREFIX = "sched-"


def schedule_id_of(call_id: str) -> str | None:
    """The schedule that placed a call, from its call_id `sched-<schedule_id>-<run>`."""
    if not call_id.startswith(CALL_PREFIX):
        return None
    return call_id[len(CALL_PREFIX):].rsplit("-", 1)[0]


class ScheduledCalls:
    publish: Publish = ignore  # schedule.fired, schedule.completed (the daemon wires it)

    def __init__(self, store: Store, placer: CallPlacer, tools: ToolRegistry,
                 webhooks: WebhookSender, settings: ScheduleSettings,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self.placer = placer
        self.tools = tools
        self.webhooks = webhooks
        self.clock = clock
        self.scheduler = Scheduler(store, self._fire, clock=clock,
                                   grace_seconds=settings.grace_seconds,
                                   on_fired=self._on_fired)

    def start(self) -> None:
        self.scheduler.start()

    def stop(self) -> None:
        self.scheduler.stop()

    def _fire(self, record: ScheduleRecord) -> str:
        if record.tool:  # refused (gone, disabled, bad parameters): the run fails, logged
            body = self.tools.run(record.tool, record.tool_params or {}).message
        else:
            body = record.message or ""
        try:
            call, _ = self.placer.place(extension=record.extension,
                                        message=record.spoken_text(body),
                                        call_id=record.run_call_id)
        except DuplicateCallId:
            # Placed before a restart that came before the run was recorded.
            return record.run_call_id
        return call.call_id

    def _on_fired(self, record: ScheduleRecord, outcome: str) -> None:
        self.publish("schedule.completed" if outcome != COMPLETED else "schedule.fired",
                     webhook_payload(record, outcome, self.clock()))
        if outcome != COMPLETED and record.callback_url:
            self.webhooks.send(record.callback_url, webhook_payload(record, outcome, self.clock()))

    def call_finished(self, call: CallRecord) -> None:
        schedule_id = schedule_id_of(call.call_id)
        if schedule_id is None:
            return
        record = self.scheduler.get(schedule_id)
        if record:
            self.publish("schedule.completed", {**webhook_payload(record, call.status,
                                                                  self.clock()),
                                                "call_id": call.call_id})
        if record and record.callback_url:
            self.webhooks.send(record.callback_url,
                               webhook_payload(record, call.status, self.clock()))

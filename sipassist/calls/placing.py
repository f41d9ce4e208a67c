"""Placing a call from any source (API, tool, schedule, timer): one way to build and queue it."""

from __future__ import annotations

from typing import Any

from ..config import Settings
from .model import CallRecord
from .queue import CallQueue
from .targets import dial_uri


class CallPlacer:
    def __init__(self, queue: CallQueue, settings: Settings) -> None:
        self.queue = queue
        self.settings = settings

    def place(self, *, extension: str, message: str, callback_url: str | None = None,
              ring_timeout: int | None = None, call_id: str = "",
              choice: dict[str, Any] | None = None, agent_id: str | None = None,
              goal: str | None = None) -> tuple[CallRecord, int | None]:
        """Queue a call; raises TargetError, DuplicateCallId or QueueFull. With `agent_id`
        the agent converses toward `goal` instead of saying `message`."""
        record = CallRecord(
            call_id=call_id, extension=extension,
            dial_uri=dial_uri(extension, self.settings.sip.dial_host), message=message, seq=0,
            callback_url=callback_url,
            ring_timeout=ring_timeout or self.settings.calls.default_ring_timeout,
            choice=choice, agent_id=agent_id, goal=goal,
        )
        return self.queue.submit(record)

"""Events: where something happens, one call `publish(event, data)`; subscribers get it.

The places that emit (calls, schedules, texts) hold a `Publish` and know nothing of webhooks;
the daemon wires them to the webhook registry. Until then they publish to `ignore`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

EVENTS = (
    "call.incoming", "call.answered", "call.completed", "call.transferred",
    "choice.collected", "schedule.fired", "schedule.completed", "text.received", "text.sent",
)
PING = "ping"  # only sent by POST /v1/webhooks/{id}/test

Publish = Callable[[str, dict[str, Any]], None]


def ignore(event: str, data: dict[str, Any]) -> None:
    """The publisher of a part no daemon has wired (unit tests, tools run on their own)."""

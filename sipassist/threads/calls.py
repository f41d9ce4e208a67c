"""Every phone call is a thread (channel "call"): its turns are written as they happen.

The caller's words are `user` messages, the assistant's `assistant`, an answer a tool gave
`tool` (named). The call record gets the thread's id (`thread_id`), so either leads to the
other. Recording never disturbs the call: a failure is logged and the call goes on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from ..calls.model import CallRecord
from ..calls.queue import CallQueue
from .model import Message
from .store import ThreadStore

log = logging.getLogger(__name__)

DEFAULT_AGENT = "default"


def message_of(turn: dict) -> Message:
    """A transcript turn ({"who", "text", "tool"?, "at"}) as a thread message."""
    at = turn.get("at")
    extra = {"created_at": at} if at else {}
    if turn.get("who") == "caller":
        return Message("user", turn["text"], **extra)
    if turn.get("tool"):
        return Message("tool", turn["text"], name=turn["tool"], **extra)
    return Message("assistant", turn["text"], **extra)


class CallThreads:
    def __init__(self, store: ThreadStore, queue: CallQueue,
                 agent_of: Callable[[CallRecord], str] = lambda record: DEFAULT_AGENT) -> None:
        self.store = store
        self.queue = queue
        self.agent_of = agent_of  # the agent answering (or placing) a call
        self._lock = threading.Lock()
        self._threads: dict[str, str] = {}  # call_id -> thread_id, for calls under way

    def thread_for(self, record: CallRecord) -> str:
        """The call's thread id, made (and noted on the call record) on first use."""
        with self._lock:
            thread_id = self._threads.get(record.call_id) or record.thread_id
            if thread_id is None:
                thread_id = self.store.call_thread(record.call_id, self.agent_of(record),
                                                   record.extension or "caller").id
            self._threads[record.call_id] = thread_id
        if record.thread_id != thread_id:
            self.queue.update(record.call_id, thread_id=thread_id)
        return thread_id

    def turn(self, call_id: str, turn: dict) -> None:
        """One turn of a call under way, added to its thread."""
        try:
            record = self.queue.get(call_id)
            if record is None:
                return
            self.store.append(self.thread_for(record), [message_of(turn)])
        except Exception:
            log.exception("call %s: its turn could not be added to its thread", call_id,
                          extra={"CALL_ID": call_id})

    def finished(self, record: CallRecord) -> None:
        """A call has ended. A call with no turns (a message call) gets its thread now: what
        was said, and the answer to its question."""
        with self._lock:
            known = self._threads.pop(record.call_id, None)
        if known or record.thread_id or not record.message_played:
            return
        try:
            messages = [Message("assistant", record.message)]
            if record.choice_raw_text:
                messages.append(Message("user", record.choice_raw_text))
            thread_id = self.store.call_thread(record.call_id, self.agent_of(record),
                                               record.extension).id
            self.store.append(thread_id, messages)
        except Exception:
            log.exception("call %s: no thread could be kept for it", record.call_id,
                          extra={"CALL_ID": record.call_id})

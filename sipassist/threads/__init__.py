"""Threads: conversations with an agent whose whole history the box keeps (seed 001).

A thread is typed to (`channel` "api") or a phone call (`channel` "call", written turn by turn
as the call goes); either can be read back and continued by text.
"""

from .model import CALL, API, CLOSED, OPEN, Message, Thread
from .store import (ThreadBusy, ThreadClosed, ThreadError, ThreadLimit, ThreadNotFound,
                    ThreadStore, ThreadUnavailable)

__all__ = ["API", "CALL", "CLOSED", "OPEN", "Message", "Thread", "ThreadBusy", "ThreadClosed",
           "ThreadError", "ThreadLimit", "ThreadNotFound", "ThreadStore", "ThreadUnavailable"]

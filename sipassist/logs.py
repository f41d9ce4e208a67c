"""Logging: the journal with structured fields under systemd, plain stderr lines otherwise.

Log calls about a call or a schedule pass `extra={"CALL_ID": ..., "EXTENSION": ...}`; in the
journal these are fields (`journalctl -u sipassist CALL_ID=out-…`), on stderr a suffix.
"""

from __future__ import annotations

import logging
import os
import sys

STRUCTURED_FIELDS = ("CALL_ID", "EXTENSION", "SCHEDULE_ID", "TOOL")


class FieldsFormatter(logging.Formatter):
    """Appends the structured fields a record carries: `... [CALL_ID=out-1 EXTENSION=1001]`."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = [f"{name}={getattr(record, name)}" for name in STRUCTURED_FIELDS
                  if getattr(record, name, None) not in (None, "")]
        return f"{text} [{' '.join(fields)}]" if fields else text


def journal_handler() -> logging.Handler | None:
    """A JournalHandler when stderr is connected to the journal and systemd-python exists."""
    if not os.environ.get("JOURNAL_STREAM"):
        return None
    try:
        from systemd.journal import JournalHandler
    except ImportError:
        return None
    return JournalHandler(SYSLOG_IDENTIFIER="sipassist")


def configure(verbose: bool = False) -> None:
    level = logging.DEBUG if verbose else logging.INFO
    handler = journal_handler()
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(FieldsFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    else:
        # The journal adds time, priority and the logger name as fields.
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)

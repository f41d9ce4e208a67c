"""TRANSFER: put the caller through to a name in the [directory] (a blind SIP REFER).

The tool only finds the target and says where the call goes; the conversation speaks that
first and then transfers (calls/handover.py), as it holds the call.
"""

from __future__ import annotations

from typing import Any

from ..calls.targets import TargetError, dial_uri
from .base import Parameter, ToolResult
from .directory import Directory


class TransferTool:
    name = "TRANSFER"
    description = "Transfer the current phone call to a person or department in the directory"
    parameters = (
        Parameter("to", "string", True, "who to put the caller through to, e.g. reception"),
    )

    needs_call = True  # the conversation holds the call it transfers (calls/handover.py)

    def __init__(self, directory: Directory, dial_host: str) -> None:
        self.directory = directory
        self.dial_host = dial_host

    @property
    def enabled(self) -> bool:
        return bool(self.directory)

    def execute(self, params: dict[str, Any]) -> ToolResult:
        entry = self.directory.find(params["to"])
        if entry is None:
            return ToolResult.failure(
                f"{params['to']!r} is not in the directory",
                f"Sorry, I can't find {params['to']} in the directory. I can put you through "
                f"to {self.directory.spoken_list()}." if self.directory else
                "Sorry, I have nobody to put you through to.")
        try:
            uri = dial_uri(entry.target, self.dial_host)
        except TargetError as exc:
            return ToolResult.failure(str(exc), f"Sorry, I can't reach {entry.name} from here.")
        return ToolResult(True, f"Putting you through to {entry.name}.",
                          {"name": entry.name, "transfer_to": uri})

"""SEND_TEXT: a SIP MESSAGE (texts.py) to the caller's own extension or a [directory] name.

Who may be texted follows the call-back rule (telephony/trust.py `callback_extension`): the
conversation passes the caller's own extension as `caller` only when the call (or text) came
from our registrar or dial domain; any other target must be in the directory. So a caller
cannot make the box text arbitrary addresses. The text is either `text`, or the answer to
`about` ("the weather": the tool that answers it is run and its answer is sent).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .base import Parameter, ToolResult
from .directory import Directory
from .registry import ToolRegistry

MAX_TEXT_CHARS = 600  # a spoken request makes a short text; the MESSAGE limit is 1300 bytes
ME = frozenset({"", "me", "myself", "my phone", "mine", "caller"})

Send = Callable[[str, str], Any]  # (extension or sip: URI, text); raises on failure


class SendTextTool:
    name = "SEND_TEXT"
    description = "Send a text message (SIP MESSAGE) to the caller or a name in the directory"
    parameters = (
        Parameter("text", "string", False, "what the text says"),
        Parameter("about", "string", False,
                  "instead of text: a question whose answer is sent, e.g. the weather"),
        Parameter("to", "string", False, "a name in the directory; the caller if not given"),
        Parameter("caller", "string", False, "the caller's own extension (set on a call)"),
    )
    enabled = True
    caller_parameter = "caller"  # filled in by the conversation (tools/registry.py)
    caller_optional = True  # without it, only directory names can be texted

    def __init__(self, directory: Directory, send: Send, tools: ToolRegistry) -> None:
        self.directory = directory
        self.send = send
        self.tools = tools

    def execute(self, params: dict[str, Any]) -> ToolResult:
        to = params.get("to", "").strip()
        if to.lower() in ME:
            target, spoken = params.get("caller") or None, "you"
            if target is None:
                return ToolResult.failure("no extension to text on this line",
                                          "Sorry, I can't send you a text on this line.")
        else:
            entry = self.directory.find(to)
            if entry is None:
                return ToolResult.failure(f"{to!r} is not in the directory",
                                          f"Sorry, I can't find {to} in the directory.")
            target, spoken = entry.target, entry.name
        text = params.get("text", "").strip()
        if not text and params.get("about"):
            text = self._answer(params["about"])
        if not text:
            return ToolResult.failure("nothing to send", "Sorry, what should the text say?")
        text = text[:MAX_TEXT_CHARS]
        try:
            self.send(target, text)
        except Exception as exc:  # texts off, nobody there, refused: the caller hears it
            return ToolResult.failure(f"the text was not sent: {exc}",
                                      "Sorry, I couldn't send the text.")
        return ToolResult(True, f"I've sent {'you' if spoken == 'you' else spoken} a text.",
                          {"to": target, "text": text})

    def _answer(self, about: str) -> str:
        """The answer a tool gives to `about` ("the weather"), or "" if no tool answers it."""
        from ..voice.intents import TOOL, recognise  # intents know the tools, not the reverse

        intent = recognise(about)
        if intent is None or intent.kind != TOOL or intent.tool == self.name:
            return ""
        tool = self.tools.get(intent.tool)
        if tool is None or not tool.enabled:
            return ""
        result = self.tools.run(tool, intent.args)
        return result.message if result.success else ""

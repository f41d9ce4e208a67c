"""The tool registry: tools by name, described as GET /tools shows them, and the one way a tool
runs (a call, a text, the API, a schedule, an agent): `run`.

`run` checks that the tool is enabled, fills in what the context gives (on a call, the caller to
ring back), checks the parameters, then executes. Refusals are ToolRefused with an HTTP status
and the words a caller hears (`spoken`); a tool's own failure (ToolError) is a failed
ToolResult, so every path says the same thing for the same fault.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .base import ParameterError, Tool, ToolError, ToolResult, check_params

NO_CALLBACK = "Sorry, I can't call you back on this line."


@dataclass(frozen=True)
class ToolContext:
    """Who a tool runs for. `conversation`: a caller on the phone or a text, for whom a tool's
    `caller_parameter` (SET_TIMER's extension) is filled in with `caller`; None there means the
    caller cannot be rung back ([sip.trust]). `phone_call`: a live call a tool that
    `needs_call` (TRANSFER) can act on."""

    conversation: bool = False
    caller: str | None = None
    phone_call: bool = False


API = ToolContext()  # the API and schedules: every parameter is given


class ToolRefused(Exception):
    """The tool was not run; the message says why (for the API), `spoken` for a caller."""

    status = 400

    @property
    def spoken(self) -> str:
        return f"Sorry, {self}."


class ToolDisabled(ToolRefused):
    status = 409


class ParametersRefused(ToolRefused, ParameterError):
    status = 400


class NeedsCall(ToolRefused):
    status = 409

    @property
    def spoken(self) -> str:
        return "Sorry, I can only put a phone call through."


class NoCallback(ToolRefused):
    status = 403

    @property
    def spoken(self) -> str:
        return NO_CALLBACK


class ToolRegistry:
    def __init__(self, tools: list[Tool]) -> None:
        self._tools = {tool.name: tool for tool in tools}

    def add(self, tool: Tool) -> None:
        self._tools[tool.name] = tool

    @property
    def names(self) -> list[str]:
        return sorted(self._tools)

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name.upper())

    def all(self) -> list[Tool]:
        return [self._tools[name] for name in self.names]

    @staticmethod
    def describe(tool: Tool) -> dict[str, Any]:
        return {
            "name": tool.name,
            "description": tool.description,
            "parameters": {p.name: p.describe() for p in tool.parameters},
            "enabled": tool.enabled,
        }

    def run(self, tool: Tool | str, params: object,
            context: ToolContext = API) -> ToolResult:
        """Run `tool` for `context`: ToolRefused when it may not run (disabled, bad
        parameters, no call-back), else its result (a ToolError becomes a failed result)."""
        if isinstance(tool, str):
            found = self.get(tool)
            if found is None:
                raise ToolRefused(f"there is no tool {tool!r} (tools: {', '.join(self.names)})")
            tool = found
        if not tool.enabled:
            reason = getattr(tool, "disabled_reason", "")
            raise ToolDisabled(f"Tool '{tool.name}' is disabled" + (f": {reason}" if reason
                                                                     else ""))
        if getattr(tool, "needs_call", False) and context.conversation \
                and not context.phone_call:
            raise NeedsCall(f"{tool.name} acts on a phone call, and this is none")
        filled = getattr(tool, "caller_parameter", None)
        if context.conversation and filled:
            # SEND_TEXT may still go to a directory name when the caller has no extension.
            if context.caller is None and not getattr(tool, "caller_optional", False):
                raise NoCallback(f"{tool.name} cannot call this caller back: not an extension "
                                 "on the registrar or dial domain (sip.trust)")
            params = {**(params if isinstance(params, dict) else {}),
                      filled: context.caller or ""}
        try:
            checked = check_params(tool, params)
            try:
                return tool.execute(checked)
            except ToolError as exc:
                return ToolResult.failure(str(exc), f"Sorry, {exc}.")
        except ParameterError as exc:
            raise ParametersRefused(str(exc)) from None

"""What a tool is: a name, a description, typed parameters, and execute(params) -> ToolResult."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


class ToolError(Exception):
    """A tool failed in a way the caller should hear about (station unplugged, bad input...)."""


class ParameterError(ValueError):
    """A parameter is missing or has the wrong type; the message names it (an API 400)."""


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str  # "string", "integer", "number", "boolean"
    required: bool = False
    description: str = ""

    def describe(self) -> dict[str, Any]:
        """As GET /tools shows it: {"type": ..., "required": ...}."""
        return {"type": self.type, "required": self.required}


@dataclass(frozen=True)
class ToolResult:
    success: bool
    message: str  # spoken on the phone
    data: dict[str, Any] = field(default_factory=dict)  # for machines
    error: str | None = None

    @classmethod
    def failure(cls, error: str, message: str | None = None) -> ToolResult:
        return cls(False, message or f"Sorry, {error}", {}, error)


class Tool(Protocol):
    name: str
    description: str
    parameters: tuple[Parameter, ...]
    enabled: bool

    def execute(self, params: dict[str, Any]) -> ToolResult: ...


_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,),
}


def check_params(tool: Tool, params: object) -> dict[str, Any]:
    """Params checked against the tool's declared parameters; raises ParameterError."""
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise ParameterError("params must be an object")
    declared = {p.name: p for p in tool.parameters}
    unknown = sorted(set(params) - set(declared))
    if unknown:
        known = ", ".join(sorted(declared)) or "none"
        raise ParameterError(f"{tool.name} has no parameter '{unknown[0]}'; its parameters: {known}")
    for parameter in tool.parameters:
        value = params.get(parameter.name)
        if value is None:
            if parameter.required:
                raise ParameterError(f"{tool.name} needs the parameter '{parameter.name}' "
                                     f"({parameter.type})")
            continue
        ok = isinstance(value, _TYPES[parameter.type]) and not (
            parameter.type != "boolean" and isinstance(value, bool))
        if not ok:
            raise ParameterError(f"parameter '{parameter.name}' of {tool.name} must be "
                                 f"{parameter.type}, not {type(value).__name__}")
    return {k: v for k, v in params.items() if v is not None}

"""The tool registry: tools by name, described as GET /tools shows them."""

from __future__ import annotations

from typing import Any

from .base import Tool, ToolResult, check_params


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

    def run(self, tool: Tool, params: object) -> ToolResult:
        """Check params (ParameterError on bad ones), then execute."""
        return tool.execute(check_params(tool, params))

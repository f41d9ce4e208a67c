"""GET /tools, GET /tools/{name}, POST /tools/{name}/execute, POST /tools/{name}/call."""

from __future__ import annotations

import bottle

from ..tools.base import ParameterError, Tool, ToolError, ToolResult
from . import body
from .calls import callback_url, place, ring_timeout
from .errors import ApiError, json_response
from .services import Services
from .speak import find_session, say

EXECUTE_FIELDS = {"params", "speak_result", "call_id"}
CALL_FIELDS = {"extension", "params", "prefix", "suffix", "ring_timeout", "callback_url"}


def spoken_with(prefix: str | None, message: str, suffix: str | None) -> str:
    return " ".join(part for part in (prefix, message, suffix) if part)


def install(app: bottle.Bottle, services: Services) -> None:
    registry = services.tools

    def lookup(name: str) -> Tool:
        tool = registry.get(name)
        if tool is None:
            raise ApiError(404, f"Tool '{name}' not found. Use GET /tools to list available "
                                f"tools ({', '.join(registry.names)}).")
        return tool

    def run(tool: Tool, params: object) -> ToolResult:
        if not tool.enabled:
            reason = getattr(tool, "disabled_reason", "")
            raise ApiError(409, f"Tool '{tool.name}' is disabled" + (f": {reason}" if reason else ""))
        try:
            return registry.run(tool, params)
        except ParameterError as exc:
            raise ApiError(400, str(exc)) from None
        except ToolError as exc:
            return ToolResult.failure(str(exc))

    @app.get("/tools")
    def list_tools():
        return json_response(200, [registry.describe(tool) for tool in registry.all()])

    @app.get("/tools/<name>")
    def get_tool(name: str) -> dict:
        return registry.describe(lookup(name))

    @app.post("/tools/<name>/execute")
    def execute(name: str) -> dict:
        tool = lookup(name)
        data = body.json_object(EXECUTE_FIELDS, allow_empty=True)
        speak_result = data.get("speak_result", False)
        if not isinstance(speak_result, bool):
            raise ApiError(400, "speak_result must be true or false")
        call_id = body.text(data, "call_id", max_length=64)
        session = find_session(services, call_id) if speak_result else None
        result = run(tool, data.get("params"))
        spoken = bool(session) and say(services, session, result.message)
        return {
            "success": result.success,
            "tool": tool.name,
            "message": result.message,
            "data": result.data,
            "spoken": spoken,
            "error": result.error,
        }

    @app.post("/tools/<name>/call")
    def call_with_result(name: str) -> dict:
        tool = lookup(name)
        data = body.json_object(CALL_FIELDS)
        extension = body.text(data, "extension", required=True, max_length=512, strip=False)
        prefix = body.text(data, "prefix", max_length=1000)
        suffix = body.text(data, "suffix", max_length=1000)
        url = callback_url(data)
        timeout = ring_timeout(data, services.settings)
        result = run(tool, data.get("params"))
        record, _ = place(services, extension=extension, callback_url=url,
                          ring_timeout=timeout,
                          message=spoken_with(prefix, result.message, suffix))
        return {
            "call_id": record.call_id,
            "status": "initiated",
            "tool": tool.name,
            "tool_success": result.success,
            "tool_message": result.message,
            "message": f"Calling {extension} with {tool.name} result",
        }

"""GET /tools, GET /tools/{name}, POST /tools/{name}/execute, POST /tools/{name}/call."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field, SkipValidation

from ..tools.base import Tool, ToolResult
from ..tools.registry import ToolRefused
from .calls import CallbackUrl, RingTimeout, place
from .errors import ApiError
from .routing import Api
from .schema import RequestModel, ResponseModel, Text
from .services import Services
from .speak import find_session, say


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):  # an explicit null too
        raise ValueError("speak_result must be true or false")
    return value


class ExecuteRequest(RequestModel):
    # Checked against the tool's own parameters (tools.base.check_params).
    params: SkipValidation[dict[str, Any] | None] = Field(None, description="Tool parameters")
    speak_result: Annotated[bool, BeforeValidator(_flag),
                            Field(description="Speak the result into the active call")] = False
    call_id: Text(max_length=64, description="Specific call ID") = None

    model_config = {"json_schema_extra": {"examples": [
        {}, {"params": {"expression": "25 * 4 + 10"}},
        {"params": {"format": "full", "timezone": "America/New_York"}}]}}


class ToolCallRequest(RequestModel):
    extension: Text(required=True, max_length=512, strip=False,
                    description="Phone number to call")
    params: SkipValidation[dict[str, Any] | None] = Field(None, description="Tool parameters")
    prefix: Text(max_length=1000, description="Message before the tool's result") = None
    suffix: Text(max_length=1000, description="Message after the tool's result") = None
    callback_url: CallbackUrl = None
    ring_timeout: RingTimeout = None

    model_config = {"json_schema_extra": {"examples": [
        {"extension": "5551234567", "prefix": "Good morning! Here is your weather update.",
         "suffix": "Have a great day!"}]}}


class ToolInfo(ResponseModel):
    name: str
    description: str
    parameters: dict[str, Any]
    enabled: bool

    model_config = {"json_schema_extra": {"examples": [
        {"name": "SET_TIMER", "description": "Set a timer for a specified duration",
         "parameters": {"duration": {"type": "integer", "required": True},
                        "message": {"type": "string", "required": False}},
         "enabled": True}]}}


class ExecuteResult(ResponseModel):
    success: bool
    tool: str
    message: str
    data: dict[str, Any]
    spoken: bool
    error: str | None

    model_config = {"json_schema_extra": {"examples": [
        {"success": True, "tool": "CALC", "message": "The result is 110",
         "data": {"result": 110}, "spoken": False, "error": None}]}}


class ToolCallResult(ResponseModel):
    call_id: str
    status: str
    tool: str
    tool_success: bool
    tool_message: str
    message: str

    model_config = {"json_schema_extra": {"examples": [
        {"call_id": "out-1732945860-2", "status": "initiated", "tool": "WEATHER",
         "tool_success": True, "tool_message": "At Storm Lake, as of 7:00 am, it's 38 degrees.",
         "message": "Calling 5551234567 with WEATHER result"}]}}


def spoken_with(prefix: str | None, message: str, suffix: str | None) -> str:
    return " ".join(part for part in (prefix, message, suffix) if part)


def install(api: Api, services: Services) -> None:
    registry = services.tools

    def lookup(name: str) -> Tool:
        tool = registry.get(name)
        if tool is None:
            raise ApiError(404, f"Tool '{name}' not found. Use GET /tools to list available "
                                f"tools ({', '.join(registry.names)}).")
        return tool

    def run(tool: Tool, params: object) -> ToolResult:
        try:
            return registry.run(tool, params)
        except ToolRefused as exc:
            raise ApiError(exc.status, str(exc)) from None

    @api.get("/tools", summary="List all available tools", tags=["Tools"],
             response=list[ToolInfo])
    def list_tools() -> list:
        return [registry.describe(tool) for tool in registry.all()]

    @api.get("/tools/<name>", summary="One tool", tags=["Tools"], response=ToolInfo,
             errors=[404])
    def get_tool(name: str) -> dict:
        return registry.describe(lookup(name))

    @api.post("/tools/<name>/execute", summary="Run a tool and get the result", tags=["Tools"],
              body=ExecuteRequest, response=ExecuteResult, errors=[404, 409],
              allow_empty_body=True)
    def execute_tool(name: str, body: ExecuteRequest) -> dict:
        tool = lookup(name)
        session = find_session(services, body.call_id) if body.speak_result else None
        result = run(tool, body.params)
        spoken = bool(session) and say(services, session, result.message)
        return {
            "success": result.success,
            "tool": tool.name,
            "message": result.message,
            "data": result.data,
            "spoken": spoken,
            "error": result.error,
        }

    @api.post("/tools/<name>/call", summary="Run a tool and call someone with the result",
              tags=["Tools"], body=ToolCallRequest, response=ToolCallResult,
              errors=[404, 409, 503])
    def call_with_result(name: str, body: ToolCallRequest) -> dict:
        tool = lookup(name)
        timeout = body.ring_timeout if body.ring_timeout is not None \
            else services.settings.calls.default_ring_timeout
        result = run(tool, body.params)
        record, _ = place(services, extension=body.extension, callback_url=body.callback_url,
                          ring_timeout=timeout,
                          message=spoken_with(body.prefix, result.message, body.suffix))
        return {
            "call_id": record.call_id,
            "status": "initiated",
            "tool": tool.name,
            "tool_success": result.success,
            "tool_message": result.message,
            "message": f"Calling {body.extension} with {tool.name} result",
        }

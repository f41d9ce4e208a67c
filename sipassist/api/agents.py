"""`/v1/agents`: personas that answer calls and texts (the engine is sipassist/agents/)."""

from __future__ import annotations

import functools

from pydantic import Field

from ..agents import (AgentConflict, AgentError, AgentNotFound, AgentStore, InvalidAgent,
                      TooManyAgents)
from ..agents.checks import MAX_INSTRUCTIONS, MAX_LINES, MAX_NAME, MAX_SPOKEN, SPEED
from ..agents.model import Agent
from .errors import ApiError
from .routing import Api
from .schema import RequestModel, ResponseModel
from .services import Services

TAGS = ["Agents"]
STATUS = {InvalidAgent: 400, AgentNotFound: 404, AgentConflict: 409, TooManyAgents: 413}
LINES_HELP = ("SIP users or extensions whose calls this agent answers: a call to "
              "sip:<line>@<box> (or to the extension through the registrar) reaches it. "
              "Takes effect at once (a baresip account per line).")


# -- schemas -------------------------------------------------------------------------------------

class PersonaFields(RequestModel):
    greeting: str | None = Field(None, max_length=MAX_SPOKEN, description="Said on answering")
    farewell: str | None = Field(None, max_length=MAX_SPOKEN, description="Said on hanging up")
    speed: float | None = Field(None, ge=SPEED[0], le=SPEED[1],
                                description="Speaking speed, 1 = the voice's own")
    filler: str | None = Field(None, max_length=MAX_SPOKEN,
                               description="Said when an answer is slow to start ('' = never)")

    model_config = {"json_schema_extra": {"examples": [
        {"greeting": "Good morning, Riverside Clinic. How can I help?",
         "farewell": "Thank you for calling. Goodbye!", "speed": 1.0, "filler": "Let me see."}]}}


class AgentFields(RequestModel):
    """POST and PUT: fields left out take their defaults; PATCH: only the fields given change."""

    name: str | None = Field(None, max_length=MAX_NAME)
    instructions: str | None = Field(None, max_length=MAX_INSTRUCTIONS,
                                     description="The agent's system prompt")
    persona: PersonaFields | None = None
    tools: list[str] | None = Field(None, description="Tool names (GET /tools); left out: "
                                                      "the default agent's")
    knowledge: list[str] | None = Field(None, description="Knowledge tables it may search")
    model: str | None = Field(None, description="The LLM; empty = the box's configured one")
    lines: list[str] | None = Field(None, max_length=MAX_LINES, description=LINES_HELP)


class AgentNew(AgentFields):
    id: str | None = Field(None, description="1 to 64 lowercase letters, digits, '_' or '-';"
                                             " made up when left out", examples=["reception"])

    model_config = {"json_schema_extra": {"examples": [
        {"id": "reception", "name": "Clinic reception",
         "instructions": "You are the receptionist of Riverside Clinic. Answer briefly.",
         "persona": {"greeting": "Riverside Clinic, how can I help?"},
         "tools": ["DATETIME"], "knowledge": ["clinic"], "lines": ["reception", "1050"]}]}}


class PersonaInfo(ResponseModel):
    greeting: str
    farewell: str
    speed: float
    filler: str


class AgentInfo(ResponseModel):
    id: str
    name: str
    instructions: str
    persona: PersonaInfo
    tools: list[str]
    knowledge: list[str]
    model: str
    lines: list[str]
    default: bool = Field(description="The default agent answers every line no other claims")
    created_at: str
    updated_at: str


# -- routes --------------------------------------------------------------------------------------

def _answering(handler):
    """The store's refusals as API errors with the same words."""
    @functools.wraps(handler)
    def wrapper(*args, **kwargs):
        try:
            return handler(*args, **kwargs)
        except AgentError as exc:
            raise ApiError(STATUS.get(type(exc), 400), str(exc)) from None
    return wrapper


def _view(agent: Agent) -> dict:
    return {**agent.to_json(), "default": agent.is_default}


def _fields(body: AgentFields) -> dict:
    return body.model_dump(exclude_none=True)


def install(api: Api, services: Services) -> None:
    def store() -> AgentStore:
        if services.agents is None:
            raise ApiError(503, "agents are not running on this box")
        return services.agents

    @api.get("/v1/agents", summary="List agents", tags=TAGS, response=list[AgentInfo])
    @_answering
    def agents_list() -> list:
        """The default agent first, then the others by creation."""
        return [_view(agent) for agent in store().list()]

    @api.post("/v1/agents", summary="Create an agent", tags=TAGS, body=AgentNew,
              response=AgentInfo, status=201, errors=[400, 409, 413])
    @_answering
    def agents_create(body: AgentNew) -> dict:
        """Fields left out take the default agent's instructions, persona and tools. An
        unknown tool or knowledge table is a 400 naming it; a line another agent has is a
        409."""
        return _view(store().create(_fields(body)))

    @api.get("/v1/agents/<agent_id>", summary="Get an agent", tags=TAGS, response=AgentInfo,
             errors=[404])
    @_answering
    def agents_get(agent_id: str) -> dict:
        return _view(store().get(agent_id))

    @api.patch("/v1/agents/<agent_id>", summary="Change some of an agent's fields", tags=TAGS,
               body=AgentFields, response=AgentInfo, errors=[400, 404, 409])
    @_answering
    def agents_patch(agent_id: str, body: AgentFields) -> dict:
        """Only the fields given change (a persona's fields too)."""
        return _view(store().update(agent_id, _fields(body)))

    @api.put("/v1/agents/<agent_id>", summary="Replace an agent", tags=TAGS, body=AgentFields,
             response=AgentInfo, errors=[400, 404, 409])
    @_answering
    def agents_put(agent_id: str, body: AgentFields) -> dict:
        """Every field as given; the ones left out go back to their defaults."""
        return _view(store().replace(agent_id, _fields(body)))

    @api.delete("/v1/agents/<agent_id>", summary="Delete an agent", tags=TAGS, status=204,
                errors=[404, 409])
    @_answering
    def agents_delete(agent_id: str) -> str:
        """Its lines go back to the default agent. The default agent itself cannot be
        deleted (409): change it instead."""
        store().delete(agent_id)
        return ""

    @api.post("/v1/agents/<agent_id>/persona", summary="Create or update an agent's persona",
              tags=TAGS, body=PersonaFields, response=AgentInfo, errors=[400, 404])
    @_answering
    def agents_persona(agent_id: str, body: PersonaFields) -> dict:
        """The persona's fields given change; the others stay."""
        return _view(store().set_persona(agent_id, body.model_dump(exclude_none=True)))

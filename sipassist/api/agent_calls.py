"""POST /v1/agents/{id}/outbound-call: the agent rings someone and talks toward a goal."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from ..agents.errors import AgentNotFound
from ..calls.model import CallRecord
from .calls import CallbackUrl, CallQueued, RingTimeout, _call_id, place
from .errors import ApiError
from .routing import Api
from .schema import RequestModel, Text
from .services import Services
from .threads import user_of_request

TAGS = ["Agents"]


class AgentCallRequest(RequestModel):
    extension: Text(required=True, max_length=512, strip=False,
                    description="Phone number, SIP extension or sip: URI")
    instructions: Text(max_length=1000, description=(
        "The call's goal, e.g. \"confirm tomorrow's 2 pm appointment\": the agent opens with "
        "it and a clear yes or no settles it")) = None
    callback_url: CallbackUrl = None
    ring_timeout: RingTimeout = None
    call_id: Annotated[Text(max_length=64, description="Custom call ID"),
                       AfterValidator(_call_id)] = None

    model_config = {"json_schema_extra": {"examples": [
        {"extension": "1001", "instructions": "confirm tomorrow's 2 pm appointment",
         "callback_url": "https://example.com/webhook"}]}}


class AgentCallQueued(CallQueued):
    agent_id: str
    thread_id: str | None = Field(None, description="The call as a conversation, written "
                                                    "as it goes: GET /v1/threads/{thread_id}")


def place_agent_call(services: Services, agent_id: str, extension: str, goal: str | None,
                     callback_url: str | None, ring_timeout: int | None,
                     call_id: str | None) -> tuple[CallRecord, int | None]:
    """Queue an agent's call and make its thread; refusals as the API errors that explain."""
    if services.agents is None:
        raise ApiError(503, "agents are not running on this box")
    try:
        agent = services.agents.get(agent_id)
    except AgentNotFound as exc:
        raise ApiError(404, str(exc)) from None
    timeout = ring_timeout if ring_timeout is not None \
        else services.settings.calls.default_ring_timeout
    record, position = place(services, extension=extension, message="",
                             callback_url=callback_url, ring_timeout=timeout,
                             call_id=call_id or "", agent_id=agent.id, goal=goal or "")
    if services.threads is not None:  # the call's thread, ready before its first word
        thread = services.threads.store.call_thread(record.call_id, agent.id,
                                                    user_of_request(), goal or "")
        services.queue.update(record.call_id, thread_id=thread.id)
        record = record.evolve(thread_id=thread.id)  # as queued (it may be ringing by now)
    return record, position


def install(api: Api, services: Services) -> None:

    @api.post("/v1/agents/<agent_id>/outbound-call", summary="Initiate an outbound call",
              tags=TAGS, body=AgentCallRequest, response=AgentCallQueued,
              errors=[404, 409, 503])
    def agent_outbound_call(agent_id: str, body: AgentCallRequest) -> dict:
        """The call is queued like POST /call. Once answered the agent says its goal, listens
        and answers turn by turn (as on an inbound call); a clear yes or no ends the call.
        `GET /call/{call_id}` and the webhook then carry the `transcript` and the `outcome`,
        one line on how it went."""
        record, position = place_agent_call(services, agent_id, body.extension,
                                            body.instructions, body.callback_url,
                                            body.ring_timeout, body.call_id)
        return {"call_id": record.call_id, "status": record.status, "message": "Call initiated",
                "queue_position": position, "agent_id": record.agent_id,
                "thread_id": record.thread_id}

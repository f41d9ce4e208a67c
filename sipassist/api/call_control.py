"""/v1/calls: place, list and control calls (hang up, speak, play audio, transfer, DTMF).

The same records, queue and state machine as POST /call: a call placed here is a CallRecord
run by the CallRunner; control acts on the CallSession of an answered call (inbound calls
too), found by its call_id.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema

from ..calls.model import IN_PROGRESS, RINGING
from ..calls.session import CallSession, Transfer
from ..calls.targets import TargetError, dial_uri
from ..telephony.ctrl import CtrlError
from ..voice.audio_files import AudioError, decode_at
from .agent_calls import place_agent_call
from .calls import CHOICE_SCHEMA, CallbackUrl, CallsQuery, CallStatus, RingTimeout, _call_id, \
    _choice, place
from .errors import ApiError
from .routing import Api, Upload
from .schema import RequestModel, ResponseModel, Text
from .services import Services
from .speak import ANSWER_GRACE_SECONDS, PLAY_MARGIN_SECONDS

DIGITS = re.compile(r"[0-9A-Da-d*#]{1,32}")
HANGUP_WAIT_SECONDS = 10  # for the call's worker to record the end
TRANSFER_WAIT_SECONDS = 30  # for the far end to follow the REFER (the runner waits as long)


class NewCall(RequestModel):
    to: Text(required=True, max_length=512, strip=False,
             description="Phone number, SIP extension or sip: URI")
    message: Text(description="Message to speak once answered") = None
    agent_id: Text(max_length=64, description="Agent to hold the call: it converses toward "
                   "`message` as its goal (as POST /v1/agents/{id}/outbound-call)") = None
    choice: Annotated[Any, BeforeValidator(_choice),
                      WithJsonSchema({"anyOf": [CHOICE_SCHEMA, {"type": "null"}]})] = None
    callback_url: CallbackUrl = None
    ring_timeout: RingTimeout = None
    call_id: Annotated[Text(max_length=64, description="Custom call ID"),
                       AfterValidator(_call_id)] = None

    model_config = {"json_schema_extra": {"examples": [
        {"to": "5551234567", "message": "Hello! Your parcel arrives tomorrow.",
         "ring_timeout": 30}]}}


class Call(CallStatus):
    hangup_by: str | None = None
    transferred_to: str | None = None


class CallPlaced(Call):
    queue_position: int | None = None


class Respond(RequestModel):
    text: Text(required=True, description="What to say into the call now")
    interrupt: bool = Field(False, description="Cut what is playing instead of waiting for it")

    model_config = {"json_schema_extra": {"examples": [
        {"text": "One moment, I am putting you through.", "interrupt": True}]}}


class Route(RequestModel):
    to: Text(required=True, max_length=512, strip=False,
             description="Where to transfer: phone number, SIP extension or sip: URI")

    model_config = {"json_schema_extra": {"examples": [{"to": "200"}]}}


def _digits(value: str) -> str:
    if not DIGITS.fullmatch(value):
        raise ValueError("digits may hold only 0-9, A-D, * and # (1 to 32 of them)")
    return value.upper()


class Dtmf(RequestModel):
    digits: Annotated[Text(required=True, max_length=32, description="Keys to press: 0-9 A-D * #"),
                      AfterValidator(_digits)]

    model_config = {"json_schema_extra": {"examples": [{"digits": "123#"}]}}


class Played(ResponseModel):
    call_id: str
    played: bool
    interrupted_other: bool
    seconds: float


class DigitsSent(ResponseModel):
    call_id: str
    digits: str


def install(api: Api, services: Services) -> None:
    settings = services.settings
    rate = settings.audio.sample_rate

    def record_of(call_id: str):
        record = services.queue.get(call_id)
        if record is None:
            raise ApiError(404, f"Call '{call_id}' not found")
        return record

    def live_session(call_id: str) -> CallSession:
        """The answered call's session; 404 unknown, 409 ended or not answered yet."""
        record = record_of(call_id)
        if record.final:
            raise ApiError(409, f"Call '{call_id}' has already ended ({record.status})")
        connecting = record.status in (RINGING, IN_PROGRESS)
        session = services.active.get(call_id, wait=ANSWER_GRACE_SECONDS if connecting else 0)
        if session is None:
            raise ApiError(409, f"Call '{call_id}' is {record.status}, not answered yet")
        session.controlled = True  # the runner keeps the line for the client's next step
        return session

    def play(session: CallSession, samples, interrupt: bool) -> dict:
        interrupting = interrupt and session.audio.playing
        playback = session.enqueue(samples, interrupt=interrupt)
        seconds = len(samples) / rate
        if not playback.done.wait(seconds + PLAY_MARGIN_SECONDS) or playback.interrupted:
            raise ApiError(409, f"Call '{session.call_id}' ended (or was interrupted) before "
                                "the audio was played")
        return {"call_id": session.call_id, "played": True,
                "interrupted_other": bool(interrupting), "seconds": round(seconds, 2)}

    @api.post("/v1/calls", summary="Place a call", tags=["Calls"], body=NewCall,
              response=CallPlaced, status=201, errors=[409, 503])
    def v1_create_call(body: NewCall) -> dict:
        """Queued like POST /call: the call speaks `message` once answered, then asks the
        `choice` question if given. Watch it with GET /v1/calls/{id}."""
        if body.agent_id:
            if body.choice:
                raise ApiError(400, "choice is for message calls; an agent's call asks its "
                                    "own questions: leave choice out")
            record, position = place_agent_call(services, body.agent_id, body.to, body.message,
                                                body.callback_url, body.ring_timeout,
                                                body.call_id)
            return {**record.to_v1(), "queue_position": position}
        if not body.message:
            raise ApiError(400, "message is required: what to say once the call is answered")
        record, position = place(
            services, extension=body.to, message=body.message, callback_url=body.callback_url,
            ring_timeout=body.ring_timeout or settings.calls.default_ring_timeout,
            call_id=body.call_id or "",
            choice=body.choice.to_document() if body.choice else None)
        return {**record.to_v1(), "queue_position": position}

    @api.get("/v1/calls", summary="Recent calls, newest first", tags=["Calls"],
             query=CallsQuery, response=list[Call])
    def v1_list_calls(query: CallsQuery) -> list:
        return [r.to_v1() for r in services.queue.recent(query.limit, query.direction)]

    @api.get("/v1/calls/<call_id>", summary="One call", tags=["Calls"], response=Call,
             errors=[404])
    def v1_get_call(call_id: str) -> dict:
        return record_of(call_id).to_v1()

    @api.put("/v1/calls/<call_id>/hangup", summary="Hang up a call", tags=["Calls"],
             response=Call, errors=[404, 409, 502], allow_empty_body=True)
    def v1_hangup_call(call_id: str) -> dict:
        """The far end gets a BYE (a CANCEL while ringing); the call ends `completed` (or
        `no_answer` while ringing) with `hangup_by: "api"`."""
        record = record_of(call_id)
        # A call being dialled shows as ringing a moment before the runner has its handle.
        ringing = (services.active.ringing_call(call_id, wait=ANSWER_GRACE_SECONDS)
                   if record.status == RINGING else None)
        if ringing is not None and not ringing.established:
            phone = ringing
        else:
            session = live_session(call_id)
            session.audio.stop_playback()
            phone = session.call
        services.queue.update(call_id, hangup_by="api")
        try:
            services.switchboard.request_hangup(phone)
        except CtrlError as exc:
            raise ApiError(502, f"baresip could not hang up: {exc}") from None
        return (services.queue.wait_ended(call_id, HANGUP_WAIT_SECONDS)
                or record_of(call_id)).to_v1()

    @api.post("/v1/calls/<call_id>/respond", summary="Say something into a call now",
              tags=["Calls"], body=Respond, response=Played, errors=[404, 409])
    def v1_respond(call_id: str, body: Respond) -> dict:
        """Spoken after what is playing, or instead of it with `"interrupt": true`; answers
        once it has been heard."""
        session = live_session(call_id)
        return play(session, services.speak(body.text), body.interrupt)

    @api.put("/v1/calls/<call_id>/audio", summary="Play an audio file into a call",
             tags=["Calls"], body=Upload(("audio/*",), multipart_field="file"),
             response=Played, errors=[404, 409, 415])
    def v1_play_audio(call_id: str, body) -> dict:
        """A WAV or FLAC of any sample rate, as the raw body (`Content-Type: audio/wav`) or
        the multipart field `file`; resampled and played after what is playing."""
        session = live_session(call_id)
        try:
            samples = decode_at(body.data, rate)
        except AudioError as exc:
            raise ApiError(415, str(exc)) from None
        return play(session, samples, False)

    @api.put("/v1/calls/<call_id>/route", summary="Transfer a call (blind, SIP REFER)",
             tags=["Calls"], body=Route, response=Call, errors=[404, 409, 502, 504])
    def v1_route_call(call_id: str, body: Route) -> dict:
        """The far end is asked (REFER) to call `to` instead; the call ends `transferred`.
        If the far end or the target refuses, 502 with the reason, which the record keeps in
        `error` as `TRANSFER_FAILED: ...`; the call goes on."""
        try:
            uri = dial_uri(body.to, settings.sip.dial_host)
        except TargetError as exc:
            raise ApiError(400, str(exc).replace("extension", "to", 1)) from None
        session = live_session(call_id)
        if session.transfer is not None and not session.transfer.done.is_set():
            raise ApiError(409, f"Call '{call_id}' is already being transferred")
        transfer = session.transfer = Transfer(uri)
        try:
            services.switchboard.transfer(session.call, uri)
        except CtrlError as exc:
            transfer.error = str(exc)
            transfer.done.set()
            raise ApiError(502, f"TRANSFER_FAILED: {exc}") from None
        if not transfer.done.wait(TRANSFER_WAIT_SECONDS):
            raise ApiError(504, f"the far end did not report the transfer within "
                                f"{TRANSFER_WAIT_SECONDS} s")
        if not transfer.succeeded:
            raise ApiError(502, f"TRANSFER_FAILED: {transfer.error}")
        session.audio.stop_playback()  # what was being said is for nobody now
        return (services.queue.wait_ended(call_id, HANGUP_WAIT_SECONDS)
                or record_of(call_id)).to_v1()

    @api.post("/v1/calls/<call_id>/dtmf", summary="Send keypad digits (DTMF) into a call",
              tags=["Calls"], body=Dtmf, response=DigitsSent, errors=[404, 409, 502])
    def v1_send_dtmf(call_id: str, body: Dtmf) -> dict:
        """RFC 4733 telephone-events, one press per digit."""
        session = live_session(call_id)
        try:
            services.switchboard.send_digits(session.call, body.digits)
        except CtrlError as exc:
            raise ApiError(502, str(exc)) from None
        return {"call_id": call_id, "digits": body.digits}

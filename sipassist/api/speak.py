"""POST /speak?message=...[&call_id=...]: say something into a live call."""

from __future__ import annotations

from pydantic import Field

from ..calls.model import IN_PROGRESS, RINGING
from ..calls.session import CallSession
from .errors import ApiError
from .routing import Api
from .schedule import Success
from .schema import RequestModel
from .services import Services

MAX_MESSAGE = 5000
PLAY_MARGIN_SECONDS = 30  # beyond the audio's own length, for what is queued before it
# A call ringing or answered a moment ago is still connecting its audio.
ANSWER_GRACE_SECONDS = 2.0


class SpeakQuery(RequestModel):
    message: str = Field("", description="Text to speak", max_length=MAX_MESSAGE)
    call_id: str = Field("", description="Specific call ID (default: the latest call)")


def find_session(services: Services, call_id: str | None) -> CallSession:
    """The named live call, or the latest one; 404 for an unknown id, 409 for none live."""
    if call_id:
        record = services.queue.get(call_id)
        if record is None:
            raise ApiError(404, f"Call '{call_id}' not found")
        connecting = record.status in (RINGING, IN_PROGRESS)
        session = services.active.get(call_id, wait=ANSWER_GRACE_SECONDS if connecting else 0)
        if session is None:
            raise ApiError(409, f"Call '{call_id}' is not in progress")
        return session
    connecting = services.queue.connecting()
    session = services.active.latest(wait=ANSWER_GRACE_SECONDS if connecting else 0)
    if session is None:
        raise ApiError(409, "No call is active; place one with POST /call")
    return session


def say(services: Services, session: CallSession, message: str) -> bool:
    """Queue speech after what is playing and wait until it has been heard."""
    samples = services.speak(message)
    playback = session.enqueue(samples)
    rate = services.settings.audio.sample_rate
    played = playback.done.wait(len(samples) / rate + PLAY_MARGIN_SECONDS)
    return played and not playback.interrupted


def install(api: Api, services: Services) -> None:
    @api.post("/speak", summary="Speak a message into the active call", tags=["Speak"],
              query=SpeakQuery, response=Success, errors=[404, 409])
    def speak(query: SpeakQuery) -> dict:
        # Checked here rather than by the model, so each problem keeps its own wording.
        message = query.message.strip()
        call_id = query.call_id.strip()
        if not message:
            raise ApiError(400, "message is required: POST /speak?message=Hello")
        if len(message) > MAX_MESSAGE:
            raise ApiError(400, f"message is longer than {MAX_MESSAGE} characters")
        session = find_session(services, call_id)
        if not say(services, session, message):
            raise ApiError(409, f"Call '{session.call_id}' ended before the message was spoken")
        return {"success": True, "message": "Message spoken to call"}

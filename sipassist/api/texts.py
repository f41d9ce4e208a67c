"""POST /v1/texts sends a text (SIP MESSAGE); GET /v1/texts lists texts sent and received."""

from __future__ import annotations

from pydantic import Field

from ..calls.targets import TargetError
from ..telephony.sip_message import MAX_TEXT_BYTES, SendError
from ..texts import Texts, TextsOff, TextTooLong
from .errors import ApiError
from .routing import Api
from .schema import RequestModel, ResponseModel
from .services import Services


class TextRequest(RequestModel):
    to: str = Field(description="Extension, phone number or sip:user@host[:port]")
    text: str = Field(min_length=1, description=f"At most {MAX_TEXT_BYTES} bytes (UTF-8)")

    model_config = {"json_schema_extra": {"examples": [
        {"to": "1001", "text": "Your parcel has arrived at reception."}]}}


class Text(ResponseModel):
    id: str
    direction: str = Field(description="inbound or outbound")
    peer: str = Field(description="The other side's SIP URI")
    text: str
    status: str = Field(description="received, sent or failed")
    error: str | None
    in_reply_to: str | None = Field(description="The inbound text an answer replies to")
    created_at: str

    model_config = {"json_schema_extra": {"examples": [
        {"id": "txt_4be1c0a2f93d5e67", "direction": "outbound", "peer": "sip:1001@pbx.lan",
         "text": "Your parcel has arrived at reception.", "status": "sent", "error": None,
         "in_reply_to": None, "created_at": "2026-11-30T11:02:03.123Z"}]}}


class TextList(ResponseModel):
    count: int
    texts: list[Text]


class TextsQuery(RequestModel):
    limit: int = Field(50, ge=1, le=1000)


def install(api: Api, services: Services) -> None:
    def texts() -> Texts:
        if services.texts is None:
            raise ApiError(503, "texts are off: set [texts] listen in the daemon's config")
        if services.texts.endpoint is None:
            raise ApiError(503, services.texts.problem)
        return services.texts

    @api.post("/v1/texts", summary="Send a text (SIP MESSAGE)", tags=["Texts"],
              body=TextRequest, response=Text, status=201, errors=[400, 413, 502, 503])
    def send_text(body: TextRequest) -> dict:
        """Waits until the far end accepts the MESSAGE (its 2xx), at most
        `[texts] timeout_seconds`; 502 says what it answered instead."""
        service = texts()
        size = len(body.text.encode("utf-8"))
        if size > MAX_TEXT_BYTES:
            raise ApiError(413, f"text is {size} bytes; a SIP MESSAGE takes at most "
                                f"{MAX_TEXT_BYTES}: shorten it or send several")
        try:
            service.target(body.to)
            return service.send(body.to, body.text)
        except TargetError as exc:
            raise ApiError(400, f"to: {exc}".replace("to: extension", "to")) from None
        except TextTooLong as exc:
            raise ApiError(413, str(exc)) from None
        except TextsOff as exc:
            raise ApiError(503, str(exc)) from None
        except SendError as exc:
            raise ApiError(502, f"the text was not delivered: {exc}") from None

    @api.get("/v1/texts", summary="Texts sent and received", tags=["Texts"],
             query=TextsQuery, response=TextList)
    def list_texts(query: TextsQuery) -> dict:
        """Newest first, with the assistant's answers (`in_reply_to`)."""
        items = services.texts.list(query.limit) if services.texts is not None else []
        return {"count": len(items), "texts": items}

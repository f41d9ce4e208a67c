"""Texts: SIP MESSAGEs received, answered by the assistant, sent, and kept for GET /v1/texts.

An incoming text passes [sip.trust] like a call (the source address, not the From header), is
published as `text.received`, and is answered on one worker thread by the same Dialogue that
answers calls (tools by rule or by the model, else the LLM), so a text and a call get the same
answer. Each peer keeps its recent exchanges, like a call's history.
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from collections import OrderedDict
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any

from .calls.inbound import Dialogue, InboundCalls
from .calls.targets import TargetError, dial_uri
from .config import Settings
from .events import Publish
from .store import Store
from .telephony.sip_message import MAX_TEXT_BYTES, MessageEndpoint, SendError, host_port_of
from .telephony.trust import CallerTrust

log = logging.getLogger(__name__)

TABLE = "texts"
QUEUE_SIZE = 32  # incoming texts waiting for an answer; more get 503 at once
PEERS_REMEMBERED = 64  # conversations (per peer) whose history is kept


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class TextsOff(Exception):
    """[texts] listen is not set."""


class TextTooLong(ValueError):
    pass


class Texts:
    def __init__(self, settings: Settings, store: Store, trust: CallerTrust,
                 inbound: InboundCalls, publish: Publish) -> None:
        self.settings = settings
        self.store = store
        self.trust = trust
        self.inbound = inbound
        self.publish = publish
        self.endpoint: MessageEndpoint | None = None
        self.problem = "texts are off: set [texts] listen in the daemon's config"
        # (peer, source, record, the line it was sent to); None stops the worker
        self._work: queue.Queue[tuple[str, str, dict[str, Any], str] | None] = \
            queue.Queue(QUEUE_SIZE)
        self._dialogues: OrderedDict[str, Dialogue] = OrderedDict()
        self._worker: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        t, sip = self.settings.texts, self.settings.sip
        if not t.listen:
            return
        try:
            self.endpoint = MessageEndpoint(t.listen_address, sip.user, sip.display_name,
                                            self._received, self._admit, t.timeout_seconds,
                                            advertised_host=sip.interface,
                                            credentials=_credentials(self.settings))
        except OSError as exc:  # the port taken: calls go on without texts
            self.problem = (f"texts cannot listen on udp {t.listen} ({exc.strerror or exc}): "
                            "free the port or change [texts] listen, then restart")
            log.error("%s", self.problem)
            return
        self._worker = threading.Thread(target=self._answer_loop, name="texts", daemon=True)
        self._worker.start()
        self.endpoint.start()

    def stop(self) -> None:
        if self.endpoint is None:
            return
        self.endpoint.stop()
        try:
            self._work.put_nowait(None)
        except queue.Full:
            pass  # the worker is daemonic; the texts it still holds are lost with the stop
        if self._worker is not None:
            self._worker.join(5)
        self.endpoint = None

    # -- incoming -----------------------------------------------------------------------------

    def _admit(self, source: str, size: int) -> tuple[int, str] | None:
        verdict = self.trust.check(source)
        if not verdict.allowed:
            log.warning("texts: refused a MESSAGE from %s: %s", source, verdict.reason)
            return 403, "Forbidden"
        if self._work.full():
            return 503, "Service Unavailable"
        return None

    def _received(self, peer: str, source: str, text: str, line: str = "") -> None:
        record = self._record("inbound", peer, text, "received")
        self.publish("text.received", self._event(record))
        if not self.settings.texts.answer:
            return
        try:
            self._work.put_nowait((peer, source, record, line))
        except queue.Full:  # admitted a moment ago; the queue filled since
            log.warning("texts: too many texts waiting; %s is not answered", record["id"])

    def _answer_loop(self) -> None:
        while True:
            job = self._work.get()
            if job is None:
                return
            peer, source, record, line = job  # line: the SIP user it was sent to
            try:
                reply = self.answer(peer, source, record["text"], line)
                # The From's URI, checked by the dial-string rules; sent back to the source.
                self.send(peer.split(";", 1)[0], reply, destination=_host_port(source),
                          in_reply_to=record["id"])
            except SendError as exc:
                log.warning("texts: the answer to %s was not delivered: %s", peer, exc)
            except TargetError as exc:  # a From no dial-string rule takes: no answer
                log.warning("texts: cannot answer %s: %s", peer, exc)
            except Exception:  # one text's bug must not end answering
                log.exception("texts: answering %s failed", record["id"])

    def answer(self, peer: str, source: str, text: str, line: str = "") -> str:
        """The answer of the agent whose line the text was sent to (else the default agent):
        the calls' Dialogue, one per peer and agent so follow-ups have context, with a
        call-back extension under the same trust rules as a call."""
        agent = self.inbound.agent_for_line(line or None)
        key = f"{peer} {agent.id}"
        dialogue = self._dialogues.pop(key, None)
        if dialogue is None:
            record = SimpleNamespace(call_id=f"text-{peer}", dial_uri=peer)
            session = SimpleNamespace(call=SimpleNamespace(source=source))
            dialogue = Dialogue(self.inbound, session, record, agent)  # type: ignore[arg-type]
            dialogue.callback = self.trust.callback_extension(peer, source)
        self._dialogues[key] = dialogue
        while len(self._dialogues) > PEERS_REMEMBERED:
            self._dialogues.popitem(last=False)
        return " ".join(dialogue.answer(text)).strip() or "Sorry, I have no answer to that."

    # -- outgoing -----------------------------------------------------------------------------

    def target(self, to: str) -> str:
        """The SIP URI for `to` (the dial-string rules of calls); TargetError if it fails."""
        return dial_uri(to, self.settings.sip.dial_host)

    def send(self, to: str, text: str, destination: tuple[str, int] | None = None,
             in_reply_to: str | None = None) -> dict[str, Any]:
        """Send a text; the record (status "sent"), or SendError after recording "failed"."""
        if self.endpoint is None:
            raise TextsOff(self.problem)
        if len(text.encode("utf-8")) > MAX_TEXT_BYTES:
            raise TextTooLong(f"text is {len(text.encode('utf-8'))} bytes; at most "
                              f"{MAX_TEXT_BYTES} fit a SIP MESSAGE")
        uri = self.target(to)
        try:
            self.endpoint.send(uri, text, destination)
        except SendError as exc:
            self._record("outbound", uri, text, "failed", error=str(exc),
                         in_reply_to=in_reply_to)
            raise
        record = self._record("outbound", uri, text, "sent", in_reply_to=in_reply_to)
        self.publish("text.sent", self._event(record))
        return record

    # -- records ------------------------------------------------------------------------------

    def _record(self, direction: str, peer: str, text: str, status: str,
                error: str | None = None, in_reply_to: str | None = None) -> dict[str, Any]:
        record = {"id": "txt_" + uuid.uuid4().hex[:16], "direction": direction,
                  "peer": peer, "text": text, "status": status, "error": error,
                  "in_reply_to": in_reply_to, "created_at": _now()}
        try:
            self.store.insert(TABLE, record)
            docs = self.store.all(TABLE)
            excess = len(docs) - self.settings.texts.keep
            if excess > 0:
                oldest = sorted(docs, key=lambda d: d["created_at"])[:excess]
                self.store.remove_many(TABLE, "id", [d["id"] for d in oldest])
        except Exception:  # the text still goes through; its record is what is lost
            log.exception("texts: could not keep %s", record["id"])
        return record

    @staticmethod
    def _event(record: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in record.items() if k != "status"}

    def list(self, limit: int) -> list[dict[str, Any]]:
        docs = sorted(self.store.all(TABLE), key=lambda d: d["created_at"], reverse=True)
        return docs[:limit]


def _credentials(settings: Settings) -> tuple[str, str] | None:
    registrar = settings.sip.registrar
    if registrar is None or not registrar.password:
        return None
    return registrar.username or settings.sip.user, registrar.password


def _host_port(source: str) -> tuple[str, int]:
    """("127.0.0.1", 5070) from "127.0.0.1:5070" (the form MessageEndpoint reports)."""
    return host_port_of(f"x@{source}")

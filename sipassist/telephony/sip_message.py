"""SIP MESSAGE (RFC 3428) on a UDP socket of its own: texts in, texts out.

baresip 1.0 raises no ctrl_tcp event for an incoming MESSAGE and sends one only to its "current
contact" (field-notes/packages.md), so the daemon speaks this one request itself: it answers an
incoming MESSAGE (and OPTIONS) at once, hands the text on, and sends MESSAGEs with UDP
retransmission (RFC 3261 timer E), waiting for the final response. It is not a general SIP
stack: no TCP/TLS, no dialogs. A 401/407 challenge to a MESSAGE we send is answered once with
digest authentication (RFC 2617 MD5, qop=auth) using [sip.registrar]'s credentials.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from .. import __version__

log = logging.getLogger(__name__)

MAX_TEXT_BYTES = 1300  # RFC 3428 §8: above this a MESSAGE may not fit a UDP datagram path
MAX_DATAGRAM = 65535
T1 = 0.5  # RFC 3261 retransmission base
T2 = 4.0
SEEN_REQUESTS = 256  # recent (Call-ID, CSeq) answered, to re-answer retransmissions
COMPACT = {"f": "from", "t": "to", "i": "call-id", "v": "via", "l": "content-length",
           "c": "content-type", "m": "contact"}
REASONS = {200: "OK", 400: "Bad Request", 403: "Forbidden", 405: "Method Not Allowed",
           413: "Request Entity Too Large", 415: "Unsupported Media Type",
           503: "Service Unavailable"}


class SendError(Exception):
    """A text was not accepted by the far end; the message says why."""


@dataclass(frozen=True)
class SipPacket:
    start: str  # "MESSAGE sip:x@y SIP/2.0" or "SIP/2.0 200 OK"
    headers: tuple[tuple[str, str], ...]  # (lower-case full name, value), in order
    body: bytes

    def header(self, name: str) -> str:
        return next((v for n, v in self.headers if n == name), "")

    def all(self, name: str) -> list[str]:
        return [v for n, v in self.headers if n == name]

    @property
    def is_response(self) -> bool:
        return self.start.startswith("SIP/2.0 ")

    @property
    def method(self) -> str:
        return self.start.split(" ", 1)[0]

    @property
    def request_user(self) -> str:
        """"reception" from "MESSAGE sip:reception@box SIP/2.0": the line a request is for."""
        parts = self.start.split(" ")
        target = parts[1] if len(parts) > 2 else ""
        return target.split(":", 1)[-1].split("@", 1)[0] if "@" in target else ""

    @property
    def status(self) -> int:
        return int(self.start.split(" ", 2)[1])


def parse(datagram: bytes) -> SipPacket | None:
    """The packet, or None for anything that is not a well-formed SIP message."""
    head, sep, body = datagram.partition(b"\r\n\r\n")
    if not sep:
        return None
    try:
        lines = head.decode("utf-8").split("\r\n")
    except UnicodeDecodeError:
        return None
    start, headers = lines[0].strip(), []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:  # a folded header line continues the last
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {line.strip()}")
            continue
        name, colon, value = line.partition(":")
        if not colon:
            return None
        name = name.strip().lower()
        headers.append((COMPACT.get(name, name), value.strip()))
    packet = SipPacket(start, tuple(headers), body)
    length = packet.header("content-length")
    if length.isdigit():
        packet = SipPacket(start, packet.headers, body[: int(length)])
    if packet.is_response:
        parts = start.split(" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            return None
    elif not start.endswith(" SIP/2.0") or start.count(" ") != 2:
        return None
    return packet


def _tag() -> str:
    return secrets.token_hex(6)


def uri_of(name_addr: str) -> str:
    """"sip:1001@pbx" from '"Bob" <sip:1001@pbx>;tag=1' or 'sip:1001@pbx;tag=1'."""
    if "<" in name_addr:
        return name_addr.split("<", 1)[1].split(">", 1)[0]
    return name_addr.split(";", 1)[0].strip()


def host_port_of(uri: str) -> tuple[str, int]:
    """("pbx.lan", 5060) from "sip:1001@pbx.lan", ("::1", 5070) from "sip:a@[::1]:5070"."""
    hostport = uri.split("@", 1)[-1].split(";", 1)[0]
    if hostport.startswith("["):
        host, _, rest = hostport[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else 5060
    host, _, port = hostport.partition(":")
    return host, int(port) if port else 5060


Incoming = Callable[[str, str, str], None]  # (from URI, source "ip:port", text)


class MessageEndpoint:
    """Receives MESSAGEs (handed to `on_text` after the 200), sends them with `send`.

    `admit(source, size)` decides each incoming MESSAGE: None to take it, or (status, reason)
    to refuse it (trust, size, a full queue)."""

    def __init__(self, listen: tuple[str, int], user: str, display_name: str,
                 on_text: Incoming, admit: Callable[[str, int], tuple[int, str] | None],
                 timeout: float, advertised_host: str = "",
                 credentials: tuple[str, str] | None = None) -> None:
        host, port = listen
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.bind((host, port))
        self.sock.settimeout(0.5)  # the receive loop checks for stop this often
        self.port = self.sock.getsockname()[1]
        self.host = host
        self.advertised_host = advertised_host
        self.user = user
        self.display_name = display_name
        self.on_text = on_text
        self.admit = admit
        self.timeout = timeout
        self.credentials = credentials  # (username, password) for a 401/407 challenge
        self._pending: dict[str, tuple[threading.Event, list[SipPacket]]] = {}
        self._lock = threading.Lock()
        self._seen: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._receive, name="sip-message", daemon=True)
        self._thread.start()
        log.info("texts: SIP MESSAGE on udp %s:%d", self.host, self.port)

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(2)
            self._thread = None
        self.sock.close()

    # -- receiving ----------------------------------------------------------------------------

    def _receive(self) -> None:
        while not self._stopping.is_set():
            try:
                datagram, address = self.sock.recvfrom(MAX_DATAGRAM)
            except socket.timeout:
                continue
            except OSError:
                if self._stopping.is_set():
                    return
                log.exception("texts: receive failed")
                time.sleep(0.5)  # a socket error repeating must not spin a core
                continue
            try:
                self._handle(datagram, address)
            except Exception:  # one odd packet must not end texts
                log.exception("texts: handling a packet from %s failed", address[0])

    def _handle(self, datagram: bytes, address: tuple) -> None:
        packet = parse(datagram)
        if packet is None:
            return  # keep-alives (CRLF) and garbage: SIP drops what it cannot parse
        if packet.is_response:
            self._response(packet)
            return
        source = _address_text(address)
        key = (packet.header("call-id"), packet.header("cseq"))
        with self._lock:
            answered = self._seen.get(key)
        if answered is not None:  # a retransmission: the same answer, no second text
            self.sock.sendto(answered, address)
            return
        if packet.method == "MESSAGE":
            refusal = self._check_message(packet, source)
        elif packet.method == "OPTIONS":
            refusal = None
        elif packet.method == "ACK":
            return
        else:
            refusal = (405, "Method Not Allowed")
        status, reason = refusal or (200, "OK")
        reply = self._reply(packet, status, reason)
        with self._lock:
            self._seen[key] = reply
            while len(self._seen) > SEEN_REQUESTS:
                self._seen.popitem(last=False)
        self.sock.sendto(reply, address)
        if packet.method == "MESSAGE" and refusal is None:
            self.on_text(uri_of(packet.header("from")), source,
                         packet.body.decode("utf-8", "replace"), packet.request_user)
        elif refusal is not None:
            log.info("texts: %s from %s refused: %d %s", packet.method, source, status, reason)

    def _check_message(self, packet: SipPacket, source: str) -> tuple[int, str] | None:
        media = packet.header("content-type").split(";", 1)[0].strip().lower()
        if media != "text/plain":
            return 415, "Unsupported Media Type"
        if len(packet.body) > MAX_TEXT_BYTES:
            return 413, "Request Entity Too Large"
        return self.admit(source, len(packet.body))

    def _reply(self, request: SipPacket, status: int, reason: str) -> bytes:
        lines = [f"SIP/2.0 {status} {reason}"]
        lines += [f"Via: {via}" for via in request.all("via")]
        to = request.header("to")
        if ";tag=" not in to:
            to = f"{to};tag={_tag()}"
        lines += [f"From: {request.header('from')}", f"To: {to}",
                  f"Call-ID: {request.header('call-id')}", f"CSeq: {request.header('cseq')}"]
        if status == 405:
            lines.append("Allow: MESSAGE, OPTIONS")
        lines += [f"User-Agent: sipassist/{__version__}", "Content-Length: 0", "", ""]
        return "\r\n".join(lines).encode("utf-8")

    def _response(self, packet: SipPacket) -> None:
        with self._lock:
            waiting = self._pending.get(packet.header("call-id"))
        if waiting is not None and packet.status >= 200:
            waiting[1].append(packet)
            waiting[0].set()

    # -- sending ------------------------------------------------------------------------------

    def send(self, uri: str, text: str, destination: tuple[str, int] | None = None) -> None:
        """Send `text` to `uri` (at `destination`, else the URI's host) and wait for its 2xx;
        SendError says why not."""
        host, port = destination or host_port_of(uri)
        try:
            info = socket.getaddrinfo(host, port, self.sock.family, socket.SOCK_DGRAM)[0]
        except (socket.gaierror, IndexError) as exc:
            raise SendError(f"cannot resolve {host}: {exc}") from None
        address = info[4]
        call_id, tag = f"{secrets.token_hex(10)}@sipassist", _tag()
        final = self._transact(self._message(uri, text, call_id, tag, address), call_id,
                               address, f"{host}:{port}")
        if final.status in (401, 407) and self.credentials:
            challenge = final.header("www-authenticate" if final.status == 401
                                     else "proxy-authenticate")
            name = "Authorization" if final.status == 401 else "Proxy-Authorization"
            answer = digest_answer(challenge, "MESSAGE", uri, *self.credentials)
            if answer:
                final = self._transact(
                    self._message(uri, text, call_id, tag, address, cseq=2,
                                  extra=f"{name}: {answer}"), call_id, address, f"{host}:{port}")
        if not 200 <= final.status < 300:
            raise SendError(f"{host}:{port} answered {final.start[8:]}")

    def _transact(self, request: bytes, call_id: str, address: tuple, where: str
                  ) -> SipPacket:
        """Send `request`, retransmitting (timer E), until its final response."""
        done, answers = threading.Event(), []
        with self._lock:
            self._pending[call_id] = (done, answers)
        try:
            deadline = time.monotonic() + self.timeout
            interval = T1
            while True:
                self.sock.sendto(request, address)
                left = deadline - time.monotonic()
                if done.wait(min(interval, max(left, 0))):
                    break
                if time.monotonic() >= deadline:
                    raise SendError(f"no answer from {where} within {self.timeout:g} s")
                interval = min(interval * 2, T2)
        finally:
            with self._lock:
                self._pending.pop(call_id, None)
        return answers[0]

    def _message(self, uri: str, text: str, call_id: str, tag: str, address: tuple,
                 cseq: int = 1, extra: str = "") -> bytes:
        local = self._local_host(address)
        here = f"[{local}]:{self.port}" if ":" in local else f"{local}:{self.port}"
        body = text.encode("utf-8")
        lines = [
            f"MESSAGE {uri} SIP/2.0",
            f"Via: SIP/2.0/UDP {here};branch=z9hG4bK{secrets.token_hex(8)};rport",
            "Max-Forwards: 70",
            f'From: "{self.display_name}" <sip:{self.user}@{here}>;tag={tag}',
            f"To: <{uri}>",
            f"Call-ID: {call_id}",
            f"CSeq: {cseq} MESSAGE",
            *([extra] if extra else []),
            "Content-Type: text/plain;charset=UTF-8",
            f"User-Agent: sipassist/{__version__}",
            f"Content-Length: {len(body)}",
            "", "",
        ]
        return "\r\n".join(lines).encode("utf-8") + body

    def _local_host(self, address: tuple) -> str:
        """The address the far end can answer: the bound one, else the route's source."""
        if self.advertised_host:
            return self.advertised_host
        if self.host not in ("0.0.0.0", "::", ""):
            return self.host
        with socket.socket(self.sock.family, socket.SOCK_DGRAM) as probe:
            probe.connect(address)  # UDP connect sends nothing; it picks the route
            return probe.getsockname()[0]


def digest_answer(challenge: str, method: str, uri: str, username: str, password: str
                  ) -> str | None:
    """The Authorization value answering a `Digest` challenge (MD5, qop auth or none), or
    None for a challenge this cannot answer (another scheme or algorithm)."""
    if not challenge.lower().startswith("digest "):
        return None
    params = {k.lower(): quoted or bare for k, quoted, bare in
              re.findall(r'(\w+)=(?:"([^"]*)"|([^,\s]+))', challenge[7:])}
    if params.get("algorithm", "MD5").upper() != "MD5" or "nonce" not in params:
        return None
    realm, nonce = params.get("realm", ""), params["nonce"]

    def md5(text: str) -> str:
        return hashlib.md5(text.encode("utf-8")).hexdigest()  # noqa: S324 (RFC 2617)

    ha1, ha2 = md5(f"{username}:{realm}:{password}"), md5(f"{method}:{uri}")
    fields = [f'username="{username}"', f'realm="{realm}"', f'nonce="{nonce}"', f'uri="{uri}"',
              "algorithm=MD5"]
    if "auth" in [q.strip() for q in params.get("qop", "").split(",")]:
        cnonce, nc = secrets.token_hex(8), "00000001"
        response = md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
        fields += ["qop=auth", f"nc={nc}", f'cnonce="{cnonce}"']
    else:
        response = md5(f"{ha1}:{nonce}:{ha2}")
    fields.append(f'response="{response}"')
    if "opaque" in params:
        fields.append(f'opaque="{params["opaque"]}"')
    return "Digest " + ", ".join(fields)


def _address_text(address: tuple) -> str:
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

"""Texts: a SIP user agent on loopback sends a MESSAGE and gets the assistant's answer back;
POST /v1/texts reaches it; [sip.trust] and the size limit hold."""

from __future__ import annotations

import queue
import secrets
import socket
import threading

import pytest

from sipassist.telephony.sip_message import SipPacket, parse

pytestmark = [pytest.mark.telephony, pytest.mark.models]

WAIT = 30.0


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class UserAgent:
    """A minimal SIP UA on loopback: sends MESSAGEs, answers every request with 200."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.uri = f"sip:ua@127.0.0.1:{self.port}"
        self.requests: queue.Queue[SipPacket] = queue.Queue()
        self.responses: queue.Queue[SipPacket] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, address = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            packet = parse(data)
            assert packet is not None, data
            if packet.is_response:
                self.responses.put(packet)
                continue
            self.requests.put(packet)
            vias = "".join(f"Via: {v}\r\n" for v in packet.all("via"))
            self.sock.sendto((f"SIP/2.0 200 OK\r\n{vias}From: {packet.header('from')}\r\n"
                              f"To: {packet.header('to')};tag=ua\r\n"
                              f"Call-ID: {packet.header('call-id')}\r\n"
                              f"CSeq: {packet.header('cseq')}\r\nContent-Length: 0\r\n\r\n"
                              ).encode(), address)

    def send(self, to: tuple[str, int], body: bytes, method: str = "MESSAGE",
             content_type: str = "text/plain", line: str = "assistant") -> SipPacket:
        """Send a request (to the SIP user `line`), return its final response."""
        call_id = secrets.token_hex(8)
        request = (f"{method} sip:{line}@{to[0]}:{to[1]} SIP/2.0\r\n"
                   f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bK{call_id}\r\n"
                   f"Max-Forwards: 70\r\nFrom: <{self.uri}>;tag=x{call_id}\r\n"
                   f"To: <sip:{line}@{to[0]}:{to[1]}>\r\nCall-ID: {call_id}\r\n"
                   f"CSeq: 1 {method}\r\nContent-Type: {content_type}\r\n"
                   f"Content-Length: {len(body)}\r\n\r\n").encode() + body
        self.sock.sendto(request, to)
        response = self.responses.get(timeout=WAIT)
        assert response.header("call-id") == call_id
        return response

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@pytest.fixture
def ua():
    agent = UserAgent()
    yield agent
    agent.stop()


def test_a_text_is_answered_and_one_sent_arrives(start_daemon, phone, ua, webhook):
    port = free_udp_port()
    daemon = start_daemon(phone, texts={"listen": f"127.0.0.1:{port}", "timeout_seconds": 3})
    status, _ = daemon.request("POST", "/v1/webhooks", {
        "url": webhook.url, "events": ["text.received", "text.sent"]})
    assert status == 201

    # A text in: 200 at once, then the assistant's answer as a MESSAGE back (a CALC tool).
    response = ua.send(("127.0.0.1", port), b"what is 25 times 4 plus 10")
    assert response.status == 200
    answer = ua.requests.get(timeout=WAIT)
    assert answer.method == "MESSAGE" and answer.start.startswith(f"MESSAGE {ua.uri} ")
    assert "110" in answer.body.decode()
    received, sent = webhook.wait(2)
    assert received["event"] == "text.received" and sent["event"] == "text.sent"
    assert received["data"]["text"] == "what is 25 times 4 plus 10"
    assert sent["data"]["in_reply_to"] == received["data"]["id"]

    # A text out through the API reaches the UA.
    status, text = daemon.request("POST", "/v1/texts", {"to": ua.uri, "text": "Hello ☀"})
    assert status == 201, text
    assert text["status"] == "sent" and text["peer"] == ua.uri
    assert ua.requests.get(timeout=WAIT).body.decode() == "Hello ☀"
    assert webhook.wait(3)[2]["data"]["text"] == "Hello ☀"  # its text.sent
    status, listing = daemon.request("GET", "/v1/texts")
    assert [t["direction"] for t in listing["texts"]] == ["outbound", "outbound", "inbound"]

    # Bad input: too long (413), a target the dial-string rules refuse (400), nobody there
    # (502, recorded as failed); a MESSAGE too long or not text, another method: refused.
    status, body = daemon.request("POST", "/v1/texts", {"to": ua.uri, "text": "x" * 1301})
    assert status == 413 and "1301 bytes" in body["detail"]
    status, body = daemon.request("POST", "/v1/texts", {"to": "sip:a b@host", "text": "hi"})
    assert status == 400 and body["detail"].startswith("to")
    status, body = daemon.request("POST", "/v1/texts", {
        "to": f"sip:nobody@127.0.0.1:{free_udp_port()}", "text": "hi"})
    assert status == 502 and "no answer" in body["detail"]
    assert ua.send(("127.0.0.1", port), b"x" * 1301).status == 413
    assert ua.send(("127.0.0.1", port), b"<b>hi</b>", content_type="text/html").status == 415
    assert ua.send(("127.0.0.1", port), b"", method="SUBSCRIBE").status == 405
    assert ua.send(("127.0.0.1", port), b"", method="OPTIONS").status == 200
    assert ua.requests.empty()  # none of these was answered with a text
    assert len(webhook.bodies) == 3  # text.sent of the API's text only


def test_a_text_to_an_agents_line_is_answered_by_that_agent(start_daemon, phone, ua):
    from .test_agent_calls import CLINIC, QUESTION

    port = free_udp_port()
    daemon = start_daemon(phone, texts={"listen": f"127.0.0.1:{port}", "timeout_seconds": 3})
    assert daemon.request("POST", "/v1/knowledge", {"name": "clinic"})[0] == 201
    status, added = daemon.request("POST", "/v1/knowledge/clinic/rows",
                                   {"rows": [{"content": row} for row in CLINIC]})
    assert status == 201, added
    status, agent = daemon.request("POST", "/v1/agents", {
        "id": "reception", "lines": ["reception"], "knowledge": ["clinic"], "tools": []})
    assert status == 201, agent

    assert ua.send(("127.0.0.1", port), QUESTION.encode(), line="reception").status == 200
    answer = ua.requests.get(timeout=WAIT).body.decode()
    assert "30 dollars" in answer and "24 hours" in answer, answer
    # The box's own line: the default agent answers (with its tools).
    assert ua.send(("127.0.0.1", port), b"what is 25 times 4 plus 10").status == 200
    assert "110" in ua.requests.get(timeout=WAIT).body.decode()


def test_a_text_from_an_untrusted_source_is_refused(start_daemon, phone, ua):
    port = free_udp_port()
    daemon = start_daemon(phone, texts={"listen": f"127.0.0.1:{port}"},
                          sip={"trust": {"networks": ["10.0.0.0/8"]}})
    assert ua.send(("127.0.0.1", port), b"what time is it").status == 403
    status, listing = daemon.request("GET", "/v1/texts")
    assert listing["count"] == 0


def test_a_taken_texts_port_leaves_calls_up_and_says_why(start_daemon, phone):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        daemon = start_daemon(phone, texts={"listen": f"127.0.0.1:{port}"})
    status, body = daemon.request("POST", "/v1/texts", {"to": "1001", "text": "hi"})
    assert status == 503 and f"cannot listen on udp 127.0.0.1:{port}" in body["detail"]
    assert daemon.request("GET", "/health")[1]["status"] == "healthy"


def test_a_challenged_text_is_sent_again_with_digest_credentials():
    """The endpoint alone on loopback: a registrar-like peer answers 401 with a Digest
    challenge, then 200 only for the right response to it."""
    import hashlib
    import re

    from sipassist.telephony.sip_message import MessageEndpoint

    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    peer.settimeout(WAIT)
    endpoint = MessageEndpoint(("127.0.0.1", 0), "assistant", "Assistant", lambda *a: None,
                               lambda *a: None, timeout=5, credentials=("1001", "s3cret"))
    endpoint.start()
    uri = f"sip:1002@127.0.0.1:{peer.getsockname()[1]}"
    outcome: list[object] = []
    sender = threading.Thread(target=lambda: outcome.append(
        _try(lambda: endpoint.send(uri, "hello"))))
    sender.start()
    try:
        def answer(packet: SipPacket, address, status: str, extra: str = "") -> None:
            vias = "".join(f"Via: {v}\r\n" for v in packet.all("via"))
            peer.sendto((f"SIP/2.0 {status}\r\n{vias}From: {packet.header('from')}\r\n"
                         f"To: {packet.header('to')};tag=p\r\nCall-ID: "
                         f"{packet.header('call-id')}\r\nCSeq: {packet.header('cseq')}\r\n"
                         f"{extra}Content-Length: 0\r\n\r\n").encode(), address)

        data, address = peer.recvfrom(65535)
        first = parse(data)
        assert first.header("authorization") == ""
        answer(first, address, "401 Unauthorized",
               'WWW-Authenticate: Digest realm="pbx", nonce="n0nce", qop="auth"\r\n')
        while True:  # skip retransmissions of the first request
            data, address = peer.recvfrom(65535)
            second = parse(data)
            if second.header("cseq") == "2 MESSAGE":
                break
        auth = dict(re.findall(r'(\w+)="?([^",]*)"?', second.header("authorization")[7:]))
        md5 = lambda s: hashlib.md5(s.encode()).hexdigest()  # noqa: E731
        expected = md5(f"{md5('1001:pbx:s3cret')}:n0nce:{auth['nc']}:{auth['cnonce']}:auth:"
                       f"{md5('MESSAGE:' + uri)}")
        assert auth["username"] == "1001" and auth["response"] == expected
        assert second.header("call-id") == first.header("call-id")
        answer(second, address, "200 OK")
        sender.join(WAIT)
        assert outcome == [None]
    finally:
        endpoint.stop()
        peer.close()


def _try(action):
    try:
        return action()
    except Exception as exc:  # the test asserts on it
        return exc

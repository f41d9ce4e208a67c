"""POST /call input validation: every bad request is refused with a JSON detail naming the field.

One daemon serves the whole module. Its phone answers manually and never does, every valid call
rings for 1 s, and at the end the queue and the phone show that no refused request left a trace.
"""

from __future__ import annotations

import json
import queue
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sipassist.telephony.events import CALL_INCOMING

from .conftest import PortBlocks, RunningDaemon, daemon_settings
from .phone import TestPhone

pytestmark = [pytest.mark.telephony, pytest.mark.models]

MESSAGE = "This call only checks the API."


@dataclass
class Harness:
    daemon: RunningDaemon
    phone: TestPhone
    valid: list[str] = field(default_factory=list)  # call_ids of accepted calls
    to_phone: int = 0  # how many of them dial the test phone

    def submit_valid(self, fields: dict, to_phone: bool = True) -> dict:
        """POST a call that must be accepted; it rings for 1 s unless it says otherwise."""
        status, body = self.daemon.request("POST", "/call", {"ring_timeout": 1, **fields})
        assert status == 200, body
        self.valid.append(body["call_id"])
        self.to_phone += to_phone
        return body

    def refuse(self, status: int, body: object = None, raw: bytes | None = None,
               method: str = "POST", path: str = "/call") -> str:
        """Send a request that must fail with `status`; returns its detail."""
        got, answer = self.daemon.request(method, path, body=body, raw=raw)
        assert got == status, (got, answer)
        assert isinstance(answer, dict) and set(answer) == {"detail", "error"}, answer
        assert isinstance(answer["detail"], str) and answer["detail"].strip(), answer
        # Seed 000's shape beside seed 003's, saying the same.
        assert answer["error"] == {"statusCode": status, "name": answer["error"]["name"],
                                   "message": answer["detail"]}, answer
        return answer["detail"]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, ports: PortBlocks,
        synthesizer, transcriber) -> Iterator[Harness]:
    tmp: Path = tmp_path_factory.mktemp("api_input")
    phone = ports.phone(tmp / "phone", answermode="manual")
    try:
        daemon = RunningDaemon(daemon_settings(tmp, ports, phone.sip_port), synthesizer,
                               transcriber)
        try:
            yield Harness(daemon, phone)
        finally:
            daemon.stop()
    finally:
        phone.stop()


def call(**fields: object) -> dict:
    """A valid call body with some fields replaced (a value of `...` removes the field)."""
    data = {"message": MESSAGE, "extension": "phone", "ring_timeout": 1, **fields}
    return {k: v for k, v in data.items() if v is not ...}


# -- the body as a whole ------------------------------------------------------------------

@pytest.mark.parametrize("raw", [
    b"not json", b"{", b'{"message": "hi", "extension": "phone",}', b"{'message': 'hi'}",
    b'{"message": "\xff\xfe", "extension": "phone"}',
], ids=["text", "truncated", "trailing-comma", "single-quotes", "bad-utf8"])
def test_body_not_json(api, raw):
    detail = api.refuse(400, raw=raw)
    assert "JSON" in detail


@pytest.mark.parametrize("raw", [b"", b"   ", b"\n"], ids=["empty", "spaces", "newline"])
def test_body_empty(api, raw):
    detail = api.refuse(400, raw=raw)
    assert "empty" in detail


@pytest.mark.parametrize("body", [
    [{"message": MESSAGE, "extension": "phone"}], [], "a string", 42, None,
], ids=["array", "empty-array", "string", "number", "null"])
def test_body_not_an_object(api, body):
    detail = api.refuse(400, raw=json.dumps(body).encode())
    assert "JSON object" in detail


def test_unknown_field_is_named(api):
    detail = api.refuse(400, call(priority="high"))
    assert "priority" in detail
    # The allowed fields are listed, so the client can see the fix.
    for name in ("message", "extension", "callback_url", "ring_timeout", "call_id", "choice"):
        assert name in detail


# -- message ------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [..., None, "", "   ", "\n\t", 42, 1.5, True, ["hi"],
                                   {"text": "hi"}],
                         ids=["missing", "null", "empty", "spaces", "whitespace", "int",
                              "float", "bool", "list", "object"])
def test_bad_message(api, value):
    detail = api.refuse(400, call(message=value))
    assert "message" in detail


def test_message_too_long(api):
    detail = api.refuse(400, call(message="a" * 5001))
    assert "message" in detail


# -- extension ----------------------------------------------------------------------------

BAD_EXTENSIONS = {
    "missing": ...,
    "null": None,
    "empty": "",
    "space-only": " ",
    "newline-injection": "1001\ndial sip:evil@x",
    "trailing-newline": "1001\n",
    "cr-lf": "1001\r\nSubject: x",
    "space": "10 01",
    "leading-space": " 1001",
    "semicolon": "1001;transport=tcp",
    "slash": "1001/2",
    "dot-dot-slash": "../1001",
    "header-injection": "sip:a@b?Subject=x",
    "uri-with-space": "sip:a b@host",
    "uri-params": "sip:a@host;transport=tcp",
    "uri-no-user": "sip:@host",
    "uri-no-host": "sip:a@",
    "uri-port-zero": "sip:a@host:0",
    "uri-port-too-big": "sip:a@host:70000",
    "uri-two-ats": "sip:a@b@c",
    "other-scheme": "tel:+15551234567",
    "sips-scheme": "sips:a@host",
    "angle-brackets": "<sip:a@host>",
    "nul": "1001\x00",
    "unicode-digits": "\u0661\u0662\u0663",
    "10000-chars": "1" * 10000,
    "129-chars": "a" * 129,
    "int": 1001,
    "float": 1001.0,
    "bool": True,
    "list": ["1001"],
    "object": {"user": "1001"},
}


@pytest.mark.parametrize("value", list(BAD_EXTENSIONS.values()), ids=list(BAD_EXTENSIONS))
def test_bad_extension(api, value):
    detail = api.refuse(400, call(extension=value))
    assert "extension" in detail


def test_valid_extensions_are_accepted(api):
    dial_host = api.daemon.settings.sip.dial_host
    expected = {
        "1001": f"sip:1001@{dial_host}",
        "+15551234567": f"sip:+15551234567@{dial_host}",
        "alice.smith": f"sip:alice.smith@{dial_host}",
    }
    for extension, uri in expected.items():
        body = api.submit_valid({"message": MESSAGE, "extension": extension})
        assert body["status"] == "queued" and body["message"] == "Call initiated"
        record = api.daemon.daemon.queue.get(body["call_id"])
        assert record.extension == extension and record.dial_uri == uri
        status, shown = api.daemon.request("GET", f"/call/{body['call_id']}")
        assert status == 200 and shown["call_id"] == body["call_id"]

    # A full SIP URI at a closed loopback port: accepted now, it just fails when dialed.
    body = api.submit_valid({"message": MESSAGE, "extension": "sip:bob@127.0.0.1:5099"},
                            to_phone=False)
    assert api.daemon.daemon.queue.get(body["call_id"]).dial_uri == "sip:bob@127.0.0.1:5099"

    # URI schemes are case-insensitive (RFC 3261 19.1.1); it is dialed as sip:.
    body = api.submit_valid({"message": MESSAGE, "extension": "SIP:bob@127.0.0.1:5099"},
                            to_phone=False)
    assert api.daemon.daemon.queue.get(body["call_id"]).dial_uri == "sip:bob@127.0.0.1:5099"


# -- ring_timeout -------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["30", "", 1.5, 30.0, True, False, 0, -1, 301, 100000,
                                   [30], {"s": 30}],
                         ids=["string", "empty-string", "fraction", "float", "true", "false",
                              "zero", "negative", "just-over-max", "huge", "list", "object"])
def test_bad_ring_timeout(api, value):
    detail = api.refuse(400, call(ring_timeout=value))
    assert "ring_timeout" in detail


def test_ring_timeout_as_large_json_number(api):
    detail = api.refuse(400, raw=b'{"message": "hi", "extension": "phone", '
                                 b'"ring_timeout": 1e400}')
    assert "ring_timeout" in detail
    detail = api.refuse(400, raw=b'{"message": "hi", "extension": "phone", '
                                 b'"ring_timeout": NaN}')
    assert "ring_timeout" in detail


# -- callback_url -------------------------------------------------------------------------

@pytest.mark.parametrize("value", [
    "ftp://x", "not a url", "notaurl", "http://", "http:///path", "javascript:alert(1)",
    "http://host:99999/", "http://host/a b", "http://host/\nX-Evil: 1", "http://h\u00e9/",
    "http://host/" + "a" * 5000, 42, True, ["http://x"], {"url": "http://x"},
], ids=["ftp", "words", "no-scheme", "no-host", "empty-host", "javascript", "bad-port",
        "space", "newline", "non-ascii", "too-long", "int", "bool", "list", "object"])
def test_bad_callback_url(api, value):
    detail = api.refuse(400, call(callback_url=value))
    assert "callback_url" in detail


# -- call_id ------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [
    "a b", "../x", "a/b", "x" * 65, "a;b", "a\nb", "caf\u00e9", "%2e%2e", 7, ["a"],
], ids=["space", "dot-dot-slash", "slash", "65-chars", "semicolon", "newline", "non-ascii",
        "percent", "int", "list"])
def test_bad_call_id(api, value):
    detail = api.refuse(400, call(call_id=value))
    assert "call_id" in detail


def test_call_id_used_twice_is_409(api):
    first = api.submit_valid({"message": MESSAGE, "extension": "phone", "call_id": "dup-1"})
    assert first["call_id"] == "dup-1"
    status_before = api.daemon.request("GET", "/queue")[1]

    detail = api.refuse(409, call(call_id="dup-1", message="A second, different call."))
    assert "call_id" in detail and "dup-1" in detail
    # The refused duplicate did not replace or add anything.
    assert api.daemon.daemon.queue.get("dup-1").message == MESSAGE
    after = api.daemon.request("GET", "/queue")[1]
    assert (after["pending"] + after["active"] + after["total_processed"]
            == status_before["pending"] + status_before["active"]
            + status_before["total_processed"])


def test_call_id_64_chars_is_accepted(api):
    call_id = "a" * 64
    body = api.submit_valid({"message": MESSAGE, "extension": "phone", "call_id": call_id})
    assert body["call_id"] == call_id
    assert api.daemon.request("GET", f"/call/{call_id}")[0] == 200


# -- choice -------------------------------------------------------------------------------

YES_NO = [{"value": "confirmed", "synonyms": ["yes"]}, {"value": "cancelled", "synonyms": ["no"]}]


@pytest.mark.parametrize(("choice", "words"), [
    ("yes", ["choice", "object"]),
    ({"prompt": "Yes or no?", "options": []}, ["choice.options", "non-empty"]),
    ({"prompt": "Yes or no?"}, ["choice.options"]),
    ({"prompt": "Yes or no?", "options": "yes,no"}, ["choice.options"]),
    ({"options": [{"value": "a"}, {"value": "A"}]}, ["choice.options[1].value", "unique"]),
    ({"options": [{"value": "a", "synonyms": ["x"]}, {"value": "b", "synonyms": ["x"]}]},
     ["choice.options[1]", "'x'"]),
    ({"options": [{"value": ""}]}, ["choice.options[0].value"]),
    ({"options": [{"value": 3}]}, ["choice.options[0].value"]),
    ({"options": [{"value": "a", "synonyms": "yes"}]}, ["choice.options[0].synonyms"]),
    ({"options": [{"value": "a", "digit": "12"}]}, ["choice.options[0].digit"]),
    ({"options": [{"value": "a", "digit": "2"}, {"value": "b"}]}, ["choice.options[1].digit"]),
    ({"options": [{"value": "a", "colour": "red"}]}, ["choice.options[0]", "colour"]),
    ({"options": YES_NO, "timeout_seconds": "15"}, ["choice.timeout_seconds", "whole number"]),
    ({"options": YES_NO, "timeout_seconds": 0}, ["choice.timeout_seconds"]),
    ({"options": YES_NO, "timeout_seconds": 1000}, ["choice.timeout_seconds"]),
    ({"options": YES_NO, "prompt": ""}, ["choice.prompt"]),
    ({"options": YES_NO, "prompt": 5}, ["choice.prompt"]),
    ({"options": YES_NO, "retries": 2}, ["choice", "retries"]),
])
def test_bad_choice_is_400(api, choice, words):
    detail = api.refuse(400, call(choice=choice))
    for word in words:
        assert word in detail


def test_valid_choice_is_accepted(api):
    body = api.submit_valid({"message": MESSAGE, "extension": "phone",
                             "choice": {"prompt": "Yes or no?", "options": YES_NO,
                                        "timeout_seconds": 5}})
    status, record = api.daemon.request("GET", f"/call/{body['call_id']}")
    assert status == 200 and record["choice_response"] is None


# -- /speak -------------------------------------------------------------------------------

@pytest.mark.parametrize(("query", "status", "word"), [
    ("", 400, "message"),
    ("?message=", 400, "message"),
    ("?message=%20%20", 400, "message"),
    ("?message=" + "a" * 5001, 400, "message"),
    ("?message=hello&call_id=no-such-call", 404, "no-such-call"),
])
def test_bad_speak_requests(api, query, status, word):
    detail = api.refuse(status, method="POST", path="/speak" + query)
    assert word in detail


def test_speak_with_no_call_active_is_409(api):
    assert api.daemon.daemon.active.latest() is None
    detail = api.refuse(409, method="POST", path="/speak?message=hello")
    assert "No call is active" in detail


# -- routes -------------------------------------------------------------------------------

def test_unknown_call_is_404(api):
    detail = api.refuse(404, method="GET", path="/call/no-such-call")
    assert "no-such-call" in detail


@pytest.mark.parametrize("method,path", [("GET", "/nope"), ("POST", "/callz"),
                                         ("GET", "/call/a/b")])
def test_unknown_path_is_404_json(api, method, path):
    body = {"message": MESSAGE, "extension": "phone"} if method == "POST" else None
    detail = api.refuse(404, body=body, method=method, path=path)
    assert path in detail


@pytest.mark.parametrize("method,path", [("DELETE", "/call"), ("GET", "/call"),
                                         ("PUT", "/call"), ("DELETE", "/call/x"),
                                         ("POST", "/queue")])
def test_wrong_method_is_405_json(api, method, path):
    detail = api.refuse(405, method=method, path=path)
    assert method in detail


# -- nothing half-written -----------------------------------------------------------------

def test_rejected_requests_left_no_trace(api):
    """Runs last: only the accepted calls are in the queue, and only they rang the phone."""
    accounted = lambda q: q["pending"] + q["active"] + q["total_processed"]  # noqa: E731
    status, q = api.daemon.request("GET", "/queue")
    assert status == 200
    assert accounted(q) == len(api.valid), (q, api.valid)

    # Let the 1 s calls ring out so every call that could ring the phone has done so.
    deadline = time.monotonic() + 120
    while (q["pending"] or q["active"]) and time.monotonic() < deadline:
        time.sleep(0.5)
        q = api.daemon.request("GET", "/queue")[1]
    assert q["pending"] == q["active"] == 0, q
    assert q["total_processed"] == len(api.valid), q
    for call_id in api.valid:
        status, record = api.daemon.request("GET", f"/call/{call_id}")
        assert status == 200 and record["status"] != "completed", record  # nobody answered

    incoming = 0
    while True:
        try:
            event = api.phone.events.get_nowait()
        except queue.Empty:
            break
        incoming += event.type == CALL_INCOMING
    assert incoming <= api.to_phone, (incoming, api.to_phone)

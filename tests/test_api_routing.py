"""The route-declaration mechanism on a real server on loopback: validation, errors, uploads,
Server-Sent Events, budgets and rate-limit headers, and the OpenAPI document it makes.

No telephony: a small Api of its own, behind the real gate and the real waitress server.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel, Field

from sipassist.api import openapi
from sipassist.api.errors import ApiError
from sipassist.api.gate import Gate
from sipassist.api.keys import KeyStore
from sipassist.api.limits import RateLimiter, charge, meter
from sipassist.api.routing import Api, Binary, Event, EventStream, Upload
from sipassist.api.schema import RequestModel, Text, WholeNumber
from sipassist.api.server import ApiServer
from sipassist.config import ApiSettings, LimitSettings


FROZEN_NOW = 1_800_000_030.0  # 30 s into a minute


class Order(RequestModel):
    message: Text(required=True, max_length=20)
    count: WholeNumber(low=1, high="max_count") = None
    ratio: float = Field(0.5, ge=0, le=1)


class Echo(BaseModel):
    message: str
    count: int | None


class Form(RequestModel):
    language: str | None = None


class Server:
    """A small app served for real; `stream_gate` lets a test hold the event stream."""

    def __init__(self, tmp: Path, limits: LimitSettings, token: str = "") -> None:
        self.stream_gate = threading.Event()
        api = Api(json_limit=1000, upload_limit=50_000, context={"max_count": 9})

        @api.post("/echo", summary="Echo", body=Order, response=Echo)
        def echo(body: Order) -> Echo:
            return Echo(message=body.message, count=body.count)

        @api.get("/items/<item>", summary="One item", errors=[404])
        def get_item(item: str) -> dict:
            if item != "known":
                raise ApiError(404, f"Item '{item}' not found", {"X-Hint": "try known"})
            return {"item": item}

        @api.get("/boom", summary="Fails")
        def boom() -> dict:
            raise RuntimeError("a bug")

        @api.post("/v1/upload", summary="Upload", body=Upload(("audio/wav", "audio/x-*"),
                                                              form=Form), response=Echo)
        def upload(body) -> dict:
            language = body.form.language if body.form else None
            return {"message": f"{len(body.data)}:{body.content_type}:{body.filename}:"
                               f"{language}", "count": None}

        @api.post("/v1/spend", summary="Spend tokens", body=Order, budget=("tokens",))
        def spend(body: Order) -> dict:
            charge(tokens=body.count or 0)
            return {"spent": body.count}

        @api.get("/v1/stream", summary="Events", response=EventStream(Echo))
        def stream() -> Iterator[Event]:
            current = meter()
            server = self

            def events() -> Iterator[Event]:
                yield Event({"message": "first", "count": 1})
                # The client has to have seen the first event for this to be set: proof that
                # events are sent as they are made, not when the stream ends.
                if not server.stream_gate.wait(10):
                    return
                current.charge(tokens=1)
                yield Event({"message": "second", "count": 2}, event="delta")
                yield Event("[DONE]")
            return events()

        @api.get("/v1/wav", summary="Audio", response=Binary("audio/wav"))
        def wav() -> bytes:
            return b"RIFF0000WAVE"

        openapi.install(api)
        self.api = api
        self.keys = KeyStore(tmp)
        settings = ApiSettings(max_json_bytes=1000, max_upload_bytes=50_000, limits=limits,
                               token=token)
        # A clock that stands still: the windows never roll over in the middle of a test.
        self.gate = Gate(api, settings, self.keys, RateLimiter(clock=lambda: FROZEN_NOW))
        self.server = ApiServer(self.gate, "127.0.0.1", 0, settings, self.gate.screen)
        self.server.start()
        self.port = self.server.port

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict | None = None) -> tuple[int, dict, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return (response.status, {k.lower(): v for k, v in response.getheaders()},
                    response.read())
        finally:
            conn.close()

    def json(self, method: str, path: str, data: object = None, raw: bytes | None = None,
             headers: dict | None = None) -> tuple[int, dict, object]:
        body = raw if raw is not None else None if data is None else json.dumps(data).encode()
        status, head, content = self.request(method, path, body,
                                             {"Content-Type": "application/json",
                                              **(headers or {})})
        return status, head, json.loads(content)


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    limits = LimitSettings(requests_per_minute=1000, tokens_per_minute=10)
    running = Server(tmp_path_factory.mktemp("routing"), limits)
    yield running
    running.server.stop()


def read_all(sock: socket.socket) -> bytes:
    """Everything until the server closes the connection (it does after an error)."""
    data = b""
    for _ in range(1000):
        part = sock.recv(65536)
        if not part:
            break
        data += part
    return data


def assert_error(answer: object, status: int, *words: str) -> str:
    assert isinstance(answer, dict) and set(answer) == {"detail", "error"}, answer
    assert answer["error"]["statusCode"] == status
    assert answer["error"]["message"] == answer["detail"]
    assert answer["error"]["name"].endswith("Error")
    for word in words:
        assert word in answer["detail"], answer
    return answer["detail"]


# -- JSON routes ------------------------------------------------------------------------------

def test_valid_body_is_validated_and_answered(server: Server) -> None:
    status, headers, body = server.json("POST", "/echo", {"message": "  hi ", "count": 3})
    assert status == 200 and body == {"message": "hi", "count": 3}
    assert headers["content-type"] == "application/json"


@pytest.mark.parametrize(("data", "words"), [
    ({}, ["message is required"]),
    ({"message": 5}, ["message must be a string, not int"]),
    ({"message": "   "}, ["message must not be empty"]),
    ({"message": "x" * 21}, ["message is longer than 20 characters"]),
    ({"message": "hi", "count": "3"}, ["count must be a whole number, not '3'"]),
    ({"message": "hi", "count": 10}, ["count must be between 1 and 9"]),  # from the context
    ({"message": "hi", "ratio": 2}, ["ratio must be at most 1"]),
    ({"message": "hi", "ratio": "a"}, ["ratio must be a number"]),
    ({"message": "hi", "colour": "red"}, ["unknown field 'colour'", "count, message, ratio"]),
])
def test_bad_bodies_name_the_field(server: Server, data: dict, words: list[str]) -> None:
    status, _, body = server.json("POST", "/echo", data)
    assert status == 400
    assert_error(body, 400, *words)


@pytest.mark.parametrize(("raw", "words"), [
    (b"", ["empty"]), (b"{", ["not valid JSON"]), (b"[1]", ["JSON object"]),
])
def test_bodies_that_are_not_objects(server: Server, raw: bytes, words: list[str]) -> None:
    status, _, body = server.json("POST", "/echo", raw=raw)
    assert status == 400
    assert_error(body, 400, *words)


def test_errors_of_every_kind_share_the_shape(server: Server) -> None:
    status, headers, body = server.json("GET", "/items/unknown")
    assert status == 404 and headers["x-hint"] == "try known"
    assert_error(body, 404, "Item 'unknown' not found")
    status, _, body = server.json("GET", "/no/such/path")
    assert status == 404
    assert_error(body, 404, "No such endpoint: GET /no/such/path")
    status, headers, body = server.json("DELETE", "/echo")
    assert status == 405 and "POST" in headers["allow"]
    assert_error(body, 405, "DELETE")
    status, _, body = server.json("GET", "/boom")
    assert status == 500
    assert_error(body, 500, "internal server error")
    assert "a bug" not in body["detail"]


def test_every_response_carries_rate_limit_headers(server: Server) -> None:
    for method, path in (("GET", "/items/known"), ("GET", "/no/such/path"), ("GET", "/boom"),
                         ("DELETE", "/echo"), ("GET", "/openapi.json")):
        _, headers, _ = server.request(method, path)
        assert headers["x-ratelimit-limit"] == "1000", (path, headers)
        assert 0 <= int(headers["x-ratelimit-remaining"]) < 1000
        assert int(headers["x-ratelimit-reset"]) > 1_700_000_000


# -- body limits -----------------------------------------------------------------------------

def test_json_body_over_the_limit_is_refused_unread(server: Server) -> None:
    # Headers only: the 413 must come before the body is sent at all.
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1001\r\n\r\n")
        answer = read_all(sock)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), answer
    assert_error(json.loads(body), 413, "1001 bytes", "at most 1000")


def test_chunked_body_over_the_limit_is_refused(server: Server) -> None:
    chunk = b"x" * 600
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                     b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                     + (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * 2 + b"0\r\n\r\n")
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 413"), answer


def test_upload_route_has_its_own_limit(server: Server) -> None:
    status, _, body = server.request("POST", "/v1/upload", b"R" * 40_000,
                                     {"Content-Type": "audio/wav"})
    assert status == 200 and json.loads(body)["message"].startswith("40000:audio/wav")
    status, _, body = server.request("POST", "/v1/upload", b"R" * 50_001,
                                     {"Content-Type": "audio/wav"})
    assert status == 413
    assert_error(json.loads(body), 413, "50001 bytes")


# -- uploads ---------------------------------------------------------------------------------

def test_upload_raw_multipart_and_wrong_type(server: Server) -> None:
    status, _, body = server.request("POST", "/v1/upload", b"RIFF", {"Content-Type": "audio/x-flac"})
    assert status == 200 and json.loads(body)["message"] == "4:audio/x-flac:None:None"

    boundary = "b0undary"
    form = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"language\"\r\n\r\nde\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"hi.wav\"\r\nContent-Type: audio/wav\r\n\r\nRIFFDATA\r\n"
            f"--{boundary}--\r\n").encode()
    status, _, body = server.request("POST", "/v1/upload", form,
                                     {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert status == 200, body
    assert json.loads(body)["message"] == "8:audio/wav:hi.wav:de"

    status, _, body = server.request("POST", "/v1/upload", b"hello",
                                     {"Content-Type": "text/plain"})
    assert status == 415
    assert_error(json.loads(body), 415, "text/plain", "audio/wav", "multipart/form-data")
    status, _, body = server.request("POST", "/v1/upload", b"", {"Content-Type": "audio/wav"})
    assert status == 400
    assert_error(json.loads(body), 400, "empty")


def test_binary_response(server: Server) -> None:
    status, headers, body = server.request("GET", "/v1/wav")
    assert status == 200 and headers["content-type"] == "audio/wav" and body.startswith(b"RIFF")


# -- Server-Sent Events and budgets ----------------------------------------------------------

def test_events_are_sent_as_they_are_made(server: Server) -> None:
    server.stream_gate.clear()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=15)
    try:
        conn.request("GET", "/v1/stream")
        response = conn.getresponse()
        assert response.status == 200
        assert response.getheader("Content-Type") == "text/event-stream"
        first = response.readline() + response.readline()
        # The generator is still waiting for the gate: this event came out on its own.
        assert b'data: {"message": "first", "count": 1}' in first, first
        server.stream_gate.set()
        rest = response.read()
    finally:
        conn.close()
    assert b'event: delta\ndata: {"message": "second", "count": 2}\n\n' in rest
    assert rest.rstrip().endswith(b"data: [DONE]")


def test_token_budget_refuses_once_spent(server: Server) -> None:
    # tokens_per_minute = 10. The stream test may have spent 1 already.
    status, _, body = server.json("POST", "/v1/spend", {"message": "a", "count": 5})
    assert status == 200 and body == {"spent": 5}
    # Under 10 spent before this one: it runs, and goes past the limit.
    status, _, body = server.json("POST", "/v1/spend", {"message": "b", "count": 9})
    assert status == 200
    status, headers, body = server.json("POST", "/v1/spend", {"message": "c", "count": 1})
    assert status == 429
    assert_error(body, 429, "LLM tokens")
    assert headers["retry-after"] == "30"  # until the minute's end


# -- the OpenAPI document ----------------------------------------------------------------------

def test_openapi_document_of_the_mechanism(server: Server) -> None:
    from openapi_spec_validator import validate

    status, _, doc = server.json("GET", "/openapi.json")
    assert status == 200
    validate(doc)
    assert doc["openapi"] == "3.1.0"
    echo = doc["paths"]["/echo"]["post"]
    schema_ref = echo["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    order = doc["components"]["schemas"][schema_ref.rsplit("/", 1)[1]]
    assert order["required"] == ["message"] and order["properties"]["message"]["maxLength"] == 20
    assert {"400", "401", "403", "413", "429"} <= set(echo["responses"])
    upload = doc["paths"]["/v1/upload"]["post"]["requestBody"]["content"]
    assert {"audio/wav", "multipart/form-data"} <= set(upload)
    assert "language" in upload["multipart/form-data"]["schema"]["properties"]
    assert "text/event-stream" in doc["paths"]["/v1/stream"]["get"]["responses"]["200"]["content"]
    assert doc["paths"]["/items/{item}"]["get"]["parameters"][0]["name"] == "item"
    assert doc["paths"]["/openapi.json"]["get"]["security"] == []


# -- screened at header time -----------------------------------------------------------------

def test_bodies_without_a_key_are_refused_before_they_are_read(tmp_path: Path) -> None:
    """With keys in force, an upload without a valid key gets 401 from its headers alone:
    nobody without a key can make the box buffer 25 MB bodies."""
    token = "routing-token-0123456789abcdef"
    guarded = Server(tmp_path, LimitSettings(requests_per_minute=50), token=token)
    try:
        for extra in (b"", b"Authorization: Bearer wrong-token-0123456789\r\n",
                      b"api-key: sipa_00000000_nope\r\n"):
            with socket.create_connection(("127.0.0.1", guarded.port), timeout=10) as sock:
                sock.sendall(b"POST /v1/upload HTTP/1.1\r\nHost: t\r\n"
                             b"Content-Type: audio/wav\r\n" + extra +
                             b"Expect: 100-continue\r\nContent-Length: 40000\r\n\r\n")
                answer = read_all(sock)
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 401"), answer[:200]
            assert b"www-authenticate: bearer" in head.lower()
            assert b"x-ratelimit-remaining" in head.lower()
            assert_error(json.loads(body), 401)
        # With the key the same upload is taken, and a too large one is refused from its
        # headers with the rate-limit state.
        status, _, body = guarded.request("POST", "/v1/upload", b"R" * 40_000,
                                          {"Content-Type": "audio/wav", "api-key": token})
        assert status == 200, body
        with socket.create_connection(("127.0.0.1", guarded.port), timeout=10) as sock:
            sock.sendall(b"POST /v1/upload HTTP/1.1\r\nHost: t\r\nContent-Type: audio/wav\r\n"
                         + f"api-key: {token}\r\n".encode()
                         + b"Content-Length: 50001\r\n\r\n")
            answer = read_all(sock)
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 413") and b"x-ratelimit-limit: 50" in head.lower()
        assert_error(json.loads(body), 413, "50001 bytes")
        assert guarded.gate.refusals == {401: 3, 413: 1}  # what /metrics can show
    finally:
        guarded.server.stop()


def test_idle_connections_time_out_and_are_capped(tmp_path: Path) -> None:
    """At max_connections the server stops accepting (the descriptors stay free for the rest
    of the daemon); idle connections are closed after idle_timeout, and then it answers."""
    api = Api()
    api.get("/health", summary="health", open=True)(lambda: {"status": "healthy"})
    settings = ApiSettings(max_connections=20, idle_timeout=1.0)
    gate = Gate(api, settings, KeyStore(tmp_path))
    server = ApiServer(gate, "127.0.0.1", 0, settings, gate.screen)
    server.start()
    idle = []
    try:
        assert server.connection_limit == 20
        for _ in range(40):  # twice the cap: the rest wait in the backlog
            idle.append(socket.create_connection(("127.0.0.1", server.port), timeout=10))
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=20)
        conn.request("GET", "/health")
        assert conn.getresponse().status == 200
        conn.close()
        # The idle ones were closed by the server: reading gives end-of-file.
        idle[0].settimeout(10)
        assert idle[0].recv(1) == b""
    finally:
        for sock in idle:
            sock.close()
        server.stop()

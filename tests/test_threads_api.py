"""`/v1/threads` over real HTTP (the daemon's waitress server) with real files on disk.

The answers come from a scripted engine at the seam threads use (`Answering`), so these tests
check what threads add: history, life cycle, limits, persistence and streaming, quickly and
without a model. The daemon tests (test_threads_daemon.py) use the real model and calls.
"""

from __future__ import annotations

import json
import socket
import threading
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest

from sipassist.api.app import empty_api
from sipassist.api import threads as thread_routes
from sipassist.api.server import ApiServer
from sipassist.config import Settings, ThreadSettings
from sipassist.threads import ThreadStore
from sipassist.threads.runs import Reply, ThreadRuns

LIMITS = ThreadSettings(max_threads=4, max_message_chars=200, max_messages=8,
                        context_messages=4)


class Scripted:
    """Answers "Answer N. Second sentence." and can hold between sentences (`gate`)."""

    def __init__(self) -> None:
        self.gate: threading.Event | None = None
        self.seen: list[list[dict]] = []

    def answer(self, thread, history, text):
        self.seen.append(history)
        reply = Reply(iter(()), model="scripted", input_tokens=len(text.split()))

        def sentences():
            yield f"You said {text}."
            if self.gate is not None:
                assert self.gate.wait(10), "the test never released the second sentence"
            reply.output_tokens = 7
            yield "That is all."

        reply.sentences = sentences()
        return reply


class Box:
    def __init__(self, state: Path) -> None:
        self.state = state
        self.engine = Scripted()
        self.store = ThreadStore(state / "threads", LIMITS, "box")
        self.store.load()
        runs = ThreadRuns(self.store, self.engine, LIMITS.context_messages, "scripted")
        settings = Settings(threads=LIMITS)
        api = empty_api(settings)
        thread_routes.install(api, SimpleNamespace(threads=runs, settings=settings))
        self.api = api
        self.server = ApiServer(api.app, "127.0.0.1", 0)
        self.server.start()
        self.url = f"http://127.0.0.1:{self.server.port}"

    def send(self, method: str, path: str, body: object = None) -> tuple[int, object]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture
def box(tmp_path: Path):
    running = Box(tmp_path)
    yield running
    running.stop()


def new_thread(box: Box, **extra) -> dict:
    status, thread = box.send("POST", "/v1/threads", {"agent_id": "default", **extra})
    assert status == 201, thread
    return thread


def test_thread_life(box: Box) -> None:
    thread = new_thread(box, additional_instructions="Be brief.")
    assert set(thread) >= {"id", "organization_id", "user_id", "agent_id", "checkpoint",
                           "history", "deleted_at", "created_at", "updated_at"}
    assert thread["history"] == [] and thread["deleted_at"] is None
    assert thread["organization_id"] == "box" and thread["agent_id"] == "default"
    tid = thread["id"]
    status, run = box.send("POST", f"/v1/threads/{tid}/run", {"role": "user", "content": "hi"})
    assert status == 200, run
    assert run["choices"] == [{"finish_reason": "stop", "message": {
        "role": "assistant", "content": "You said hi. That is all."}}]
    assert run["model"] == "scripted" and run["usage"] == {"input_tokens": 1,
                                                           "output_tokens": 7}
    assert isinstance(run["created"], int) and run["execution_time"] >= 0
    # Seed 000's name for the same thing.
    status, _ = box.send("POST", f"/v1/threads/{tid}/messages",
                         {"role": "user", "content": "again", "name": "Ann"})
    assert status == 200
    status, got = box.send("GET", f"/v1/threads/{tid}")
    assert [(m["role"], m["content"]) for m in got["history"]] == [
        ("user", "hi"), ("assistant", "You said hi. That is all."),
        ("user", "again"), ("assistant", "You said again. That is all.")]
    assert got["history"][2]["name"] == "Ann"
    # The engine saw the history before the turn's text.
    assert box.engine.seen[1] == [{"role": "user", "content": "hi"},
                                  {"role": "assistant", "content": "You said hi. That is all."}]

    assert box.send("POST", f"/v1/threads/{tid}/clear")[0] == 204
    assert box.send("GET", f"/v1/threads/{tid}")[1]["history"] == []
    status, closed = box.send("POST", f"/v1/threads/{tid}/close")
    assert status == 200 and closed["status"] == "closed"
    status, refused = box.send("POST", f"/v1/threads/{tid}/run",
                               {"role": "user", "content": "hello?"})
    assert status == 409 and "closed" in refused["detail"]
    assert refused["error"]["name"] == "ConflictError"
    assert box.send("DELETE", f"/v1/threads/{tid}")[0] == 204
    assert box.send("GET", f"/v1/threads/{tid}")[0] == 404
    assert box.send("DELETE", f"/v1/threads/{tid}")[0] == 404
    assert not (box.state / "threads" / f"{tid}.json").exists()


def test_threads_survive_a_restart(box: Box, tmp_path: Path) -> None:
    tid = new_thread(box)["id"]
    box.send("POST", f"/v1/threads/{tid}/run", {"role": "user", "content": "remember me"})
    box.stop()
    again = Box(tmp_path)
    try:
        status, got = again.send("GET", f"/v1/threads/{tid}")
        assert status == 200 and len(got["history"]) == 2
        assert got["history"][0]["content"] == "remember me"
        status, _ = again.send("POST", f"/v1/threads/{tid}/run",
                               {"role": "user", "content": "still there"})
        assert status == 200
        assert len(again.send("GET", f"/v1/threads/{tid}")[1]["history"]) == 4
    finally:
        again.stop()


def test_list_filters(box: Box) -> None:
    first, second = new_thread(box)["id"], new_thread(box)["id"]
    box.send("POST", f"/v1/threads/{second}/close")
    status, listed = box.send("GET", "/v1/threads?status=closed")
    assert status == 200 and [t["id"] for t in listed] == [second]
    assert {t["id"] for t in box.send("GET", "/v1/threads?channel=api")[1]} == {first, second}
    assert box.send("GET", "/v1/threads?channel=call")[1] == []
    assert box.send("GET", "/v1/threads?agent_id=other")[1] == []
    assert len(box.send("GET", "/v1/threads?limit=1")[1]) == 1
    assert box.send("GET", "/v1/threads?since=2999-01-01T00:00:00Z")[1] == []
    for query in ("status=gone", "channel=fax", "limit=0", "since=yesterday"):
        status, error = box.send("GET", f"/v1/threads?{query}")
        assert status == 400, (query, error)


def test_bad_inputs(box: Box) -> None:
    status, error = box.send("POST", "/v1/threads", {"agent_id": "nobody"})
    assert status == 404 and "agent 'nobody' not found" in error["detail"]
    assert box.send("POST", "/v1/threads", {})[0] == 400
    assert box.send("POST", "/v1/threads/thread_nope/run",
                    {"role": "user", "content": "hi"})[0] == 404
    tid = new_thread(box)["id"]
    status, error = box.send("POST", f"/v1/threads/{tid}/run", {"role": "wizard",
                                                               "content": "hi"})
    assert status == 400 and "role" in error["detail"]
    status, error = box.send("POST", f"/v1/threads/{tid}/run", {"role": "user",
                                                               "content": "   "})
    assert status == 400 and "empty" in error["detail"]
    status, error = box.send("POST", f"/v1/threads/{tid}/run", {"role": "user",
                                                               "content": "x" * 201})
    assert status == 413 and "max_message_chars" in error["detail"]
    assert box.send("POST", f"/v1/threads/{tid}/run", {"role": "user"})[0] == 400
    # Nothing refused was kept.
    assert box.send("GET", f"/v1/threads/{tid}")[1]["history"] == []


def test_bounds(box: Box) -> None:
    tid = new_thread(box)["id"]
    for n in range(4):  # 8 messages: the most a thread keeps here
        assert box.send("POST", f"/v1/threads/{tid}/run",
                        {"role": "user", "content": f"n{n}"})[0] == 200
    # The model reads only the latest context_messages (4); the thread keeps all 8.
    assert len(box.engine.seen[-1]) == 4
    status, error = box.send("POST", f"/v1/threads/{tid}/run",
                             {"role": "user", "content": "more"})
    assert status == 409 and "max_messages" in error["detail"]
    for _ in range(3):
        new_thread(box)
    status, error = box.send("POST", "/v1/threads", {"agent_id": "default"})
    assert status == 409 and "max_threads" in error["detail"]


def test_old_threads_are_pruned(box: Box, tmp_path: Path) -> None:
    tid = new_thread(box)["id"]
    path = box.state / "threads" / f"{tid}.json"
    doc = json.loads(path.read_text())
    doc["updated_at"] = "2000-01-01T00:00:00Z"
    path.write_text(json.dumps(doc))
    keep = new_thread(box)["id"]
    box.stop()
    again = Box(tmp_path)
    try:
        assert again.send("GET", f"/v1/threads/{tid}")[0] == 404
        assert again.send("GET", f"/v1/threads/{keep}")[0] == 200
        assert not path.exists()
    finally:
        again.stop()


def read_event(stream) -> tuple[str, dict]:
    """One server-sent event (event name, data) read off the socket as it arrives."""
    name, data = "message", None
    while True:
        line = stream.readline()
        assert line, "the stream ended before the event"
        line = line.decode().rstrip("\r\n")
        if not line:
            if data is not None:
                return name, data
            continue
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            data = json.loads(line[6:])


def test_run_streams_sentence_by_sentence(box: Box) -> None:
    """The first sentence reaches the client while the second is still being worked out."""
    tid = new_thread(box)["id"]
    box.engine.gate = threading.Event()
    body = json.dumps({"role": "user", "content": "stream"}).encode()
    with socket.create_connection(("127.0.0.1", box.server.port), timeout=10) as sock:
        sock.sendall(f"POST /v1/threads/{tid}/run?stream=true HTTP/1.0\r\nHost: x\r\n"
                     f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                     .encode() + body)
        stream = sock.makefile("rb")
        status = stream.readline().decode()
        assert " 200 " in status, status
        headers = {}
        while (line := stream.readline().decode().strip()):
            key, _, value = line.partition(":")
            headers[key.lower()] = value.strip()
        assert headers["content-type"].startswith("text/event-stream")
        # Held by the engine after its first sentence: this arrives only if flushed now.
        assert read_event(stream) == ("delta", {"content": "You said stream. "})
        box.engine.gate.set()
        assert read_event(stream) == ("delta", {"content": "That is all. "})
        name, done = read_event(stream)
        assert name == "done"
        assert done["choices"][0]["message"]["content"] == "You said stream. That is all."
        assert done["usage"]["output_tokens"] == 7
    history = box.send("GET", f"/v1/threads/{tid}")[1]["history"]
    assert [m["role"] for m in history] == ["user", "assistant"]


def test_a_stream_refused_is_a_plain_error(box: Box) -> None:
    status, error = box.send("POST", "/v1/threads/thread_none/run?stream=true",
                             {"role": "user", "content": "hi"})
    assert status == 404 and "not found" in error["detail"]


def test_runs_charge_the_token_budget(box: Box, tmp_path: Path) -> None:
    """A run's tokens count toward the client's tokens_per_minute: past it, 429."""
    from sipassist.api.gate import Gate
    from sipassist.api.keys import KeyStore
    from sipassist.config import ApiSettings, LimitSettings

    limits = LimitSettings(requests_per_minute=0, tokens_per_minute=10)
    gate = Gate(box.api, ApiSettings(limits=limits), KeyStore(tmp_path / "keys"))
    server = ApiServer(gate, "127.0.0.1", 0)
    server.start()
    try:
        box.url = f"http://127.0.0.1:{server.port}"
        tid = new_thread(box)["id"]
        run = {"role": "user", "content": "hi"}  # 1 token in, 7 out
        assert box.send("POST", f"/v1/threads/{tid}/run", run)[0] == 200  # 8 of 10
        assert box.send("POST", f"/v1/threads/{tid}/run", run)[0] == 200  # 16: over now
        status, error = box.send("POST", f"/v1/threads/{tid}/run", run)
        assert status == 429 and "LLM tokens" in error["detail"]
        assert len(box.send("GET", f"/v1/threads/{tid}")[1]["history"]) == 4
    finally:
        server.stop()


def test_a_busy_model_takes_the_message_back(box: Box) -> None:
    """Calls came first and the model stayed busy: 503, and nothing half-written is kept."""
    from sipassist.voice.gate import ModelBusy

    def busy(thread, history, text):
        def sentences():
            raise ModelBusy("llm", "the LLM model is busy with calls", 5)
            yield  # a generator, as the engine's answers are

        return Reply(sentences())

    tid = new_thread(box)["id"]
    box.engine.answer = busy
    request = urllib.request.Request(f"{box.url}/v1/threads/{tid}/run", method="POST",
                                     data=json.dumps({"role": "user", "content": "hi"}).encode(),
                                     headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 503 and refused.value.headers["Retry-After"] == "5"
    assert "busy" in json.loads(refused.value.read())["detail"]
    assert box.send("GET", f"/v1/threads/{tid}")[1]["history"] == []


def test_a_damaged_thread_file_is_moved_aside(tmp_path: Path) -> None:
    store = ThreadStore(tmp_path / "threads", LIMITS, "box")
    store.load()
    good = store.create("default", "me")
    (tmp_path / "threads" / "thread_0000000000000000.json").write_text('{"id": "thread_0')
    (tmp_path / "threads" / f".{good.id}.json.123.tmp").write_text("half")
    again = ThreadStore(tmp_path / "threads", LIMITS, "box")
    again.load()
    assert [t.id for t in again.list()] == [good.id]
    names = sorted(p.name for p in (tmp_path / "threads").iterdir())
    assert any(name.startswith("thread_0000000000000000.json.corrupt-") for name in names)
    assert not any(name.endswith(".tmp") for name in names)


def test_a_call_makes_room_when_the_box_is_full(tmp_path: Path) -> None:
    """POST /v1/threads is refused at max_threads; a call is never refused: the least
    recently used thread goes. A call's thread is made once, however many ask for it."""
    store = ThreadStore(tmp_path / "threads", ThreadSettings(max_threads=2), "box")
    store.load()
    old, recent = store.create("default", "me"), store.create("default", "me")
    call = store.call_thread("in-1-1", "default", "1001")
    assert store.call_thread("in-1-1", "default", "1001").id == call.id
    assert {t.id for t in store.list()} == {recent.id, call.id}
    assert not store.path(old.id).exists()
    assert call.channel == "call" and call.call_id == "in-1-1" and call.user_id == "1001"

"""Threads in the running daemon: the real model, real calls from and to the test phone."""

from __future__ import annotations

import json
import urllib.request

import numpy as np
import pytest

from sipassist.telephony.events import CALL_CLOSED, CALL_ESTABLISHED

pytestmark = [pytest.mark.telephony, pytest.mark.models]

RATE = 16000
GOAL = "confirm tomorrow's 2 pm appointment"


def speech_track(synthesizer, parts: list[float | str]) -> np.ndarray:
    """Silence (a number of seconds) and sentences (Piper speech), one after another."""
    return np.concatenate([synthesizer.synthesize(part) if isinstance(part, str)
                           else np.zeros(int(part * RATE), np.float32) for part in parts])


def stream_events(daemon, path: str, body: dict) -> list[tuple[str, dict]]:
    request = urllib.request.Request(daemon.url + path, data=json.dumps(body).encode(),
                                     method="POST",
                                     headers={"Content-Type": "application/json"})
    events, name = [], "message"
    with urllib.request.urlopen(request, timeout=120) as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        for raw in response:
            line = raw.decode().rstrip("\r\n")
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[6:])))
    return events


def test_thread_with_the_model_survives_a_restart(start_daemon, phone, chat, tmp_path):
    daemon = start_daemon(phone, chat=chat)
    status, agent = daemon.request("POST", "/v1/agents", {
        "id": "owls", "name": "Owl Expert",
        "instructions": "You answer questions about owls in one or two short sentences."})
    assert status == 201, agent
    assert daemon.request("POST", "/v1/knowledge", {"name": "owls"})[0] == 201
    assert daemon.request("POST", "/v1/knowledge/owls/rows", {"rows": [
        {"content": "Barn owls swallow their prey whole."}]})[0] == 201
    status, thread = daemon.request("POST", "/v1/threads", {"agent_id": "owls"})
    assert status == 201, thread
    tid = thread["id"]
    status, first = daemon.request("POST", f"/v1/threads/{tid}/run",
                                   {"role": "user", "content": "Why do owls hoot at night?"})
    assert status == 200, first
    answer = first["choices"][0]["message"]["content"]
    assert answer and first["choices"][0]["message"]["role"] == "assistant"
    assert first["usage"]["output_tokens"] > 0 and first["usage"]["input_tokens"] > 0
    assert first["model"] == "qwen-0.5b"
    status, second = daemon.request("POST", f"/v1/threads/{tid}/run",
                                    {"role": "user", "content": "And where do they sleep?"})
    assert status == 200, second
    history = daemon.request("GET", f"/v1/threads/{tid}")[1]["history"]
    assert [m["role"] for m in history] == ["user", "assistant", "user", "assistant"]
    assert history[1]["content"] == answer

    # Streamed: a `delta` per sentence as it is ready, then `done` with the whole answer.
    events = stream_events(daemon, f"/v1/threads/{tid}/run?stream=true",
                           {"role": "user", "content": "Tell me two facts about barn owls."})
    names = [name for name, _ in events]
    assert len(events) >= 2 and names[-1] == "done" and set(names[:-1]) == {"delta"}, events
    streamed = "".join(data["content"] for _, data in events[:-1]).strip()
    assert streamed == events[-1][1]["choices"][0]["message"]["content"]

    daemon.stop()
    again = start_daemon(phone, state=tmp_path, chat=chat)
    status, kept = again.request("GET", f"/v1/threads/{tid}")
    assert status == 200 and len(kept["history"]) == 6 and kept["agent_id"] == "owls"
    assert kept["history"][1]["content"] == answer
    assert again.request("GET", "/v1/agents/owls")[1]["name"] == "Owl Expert"
    assert again.request("GET", "/v1/knowledge/owls")[1]["rows"] == 1
    status, _ = again.request("POST", f"/v1/threads/{tid}/run",
                              {"role": "user", "content": "What is 6 times 7?"})
    assert status == 200
    assert again.request("GET", f"/v1/threads/{tid}")[1]["history"][-1] == {
        **again.request("GET", f"/v1/threads/{tid}")[1]["history"][-1],
        "role": "tool", "name": "CALC", "content": "The result is 42"}


@pytest.mark.heard  # Whisper hears the phone's speech in a real-time call
def test_a_call_is_a_thread_and_goes_on_by_text(start_daemon, phone, synthesizer):
    daemon = start_daemon(phone)
    phone.set_speech(speech_track(synthesizer, [
        4.5, "What's 25 times 4 plus 10?", 7.0, "Goodbye.", 3.0]), RATE)
    phone.command("dial", daemon.sip_uri)
    phone.wait_event(CALL_ESTABLISHED)
    phone.wait_event(CALL_CLOSED, timeout=60)
    assert daemon.daemon.queue.wait_idle(timeout=30)

    status, threads = daemon.request("GET", "/v1/threads?channel=call")
    assert status == 200 and len(threads) == 1, threads
    thread = threads[0]
    call = daemon.request("GET", f"/call/{thread['call_id']}")[1]
    assert call["thread_id"] == thread["id"] and call["direction"] == "inbound"
    turns = [(m["role"], m.get("name"), m["content"]) for m in thread["history"]]
    assert len(turns) == len(call["transcript"]), (turns, call["transcript"])
    assert turns[0][:2] == ("assistant", None)  # the greeting
    assert ("tool", "CALC", "The result is 110") in turns, turns
    assert turns[-1] == ("assistant", None, "Goodbye!")
    assert [r for r, _, _ in turns].count("user") == 2
    assert daemon.request("GET", "/v1/threads?channel=api")[1] == []

    status, run = daemon.request("POST", f"/v1/threads/{thread['id']}/run",
                                 {"role": "user", "content": "And what is 3 plus 4?"})
    assert status == 200 and run["choices"][0]["message"]["content"] == "The result is 7"
    history = daemon.request("GET", f"/v1/threads/{thread['id']}")[1]["history"]
    assert len(history) == len(turns) + 2


@pytest.mark.heard  # Whisper hears the phone's speech in a real-time call
def test_agent_calls_out_and_reports_the_outcome(start_daemon, phone, synthesizer, webhook):
    daemon = start_daemon(phone)
    phone.set_speech(speech_track(synthesizer, [5.5, "Yes, that works for me.", 10.0]), RATE)
    status, queued = daemon.request("POST", "/v1/agents/default/outbound-call", {
        "extension": "phone", "instructions": GOAL, "callback_url": webhook.url})
    assert status == 200, queued
    assert queued["status"] == "queued" and queued["agent_id"] == "default"
    call_id, thread_id = queued["call_id"], queued["thread_id"]

    payload = webhook.wait(timeout=90)[0]
    record = daemon.request("GET", f"/call/{call_id}")[1]
    said = [(t["who"], t["text"]) for t in record["transcript"]]
    assert payload["call_id"] == call_id and payload["status"] == "completed", (payload, said)
    assert payload["outcome"].startswith("Yes: the callee answered"), said
    assert GOAL in payload["outcome"]
    assert said[0] == ("assistant", f"Hello, this is Assistant. I'm calling to {GOAL}.")
    assert said[1][0] == "caller" and "yes" in said[1][1].lower(), said
    assert said[-1][0] == "assistant" and said[-1][1].endswith("Goodbye!"), said
    assert payload["transcript"] == record["transcript"]
    assert record["outcome"] == payload["outcome"] and record["thread_id"] == thread_id
    # The seed's webhook fields are all still there.
    assert {"call_id", "status", "extension", "duration_seconds", "message_played",
            "choice_response", "choice_raw_text", "error"} <= set(payload)

    thread = daemon.request("GET", f"/v1/threads/{thread_id}")[1]
    assert thread["channel"] == "call" and thread["call_id"] == call_id
    assert [m["role"] for m in thread["history"]] == ["assistant", "user", "assistant"]


def test_a_message_call_is_a_thread_too(start_daemon, phone, webhook):
    daemon = start_daemon(phone)
    status, error = daemon.request("POST", "/v1/agents/nobody/outbound-call",
                                   {"extension": "phone"})
    assert status == 404 and "nobody" in error["detail"]
    status, error = daemon.request("POST", "/v1/agents/default/outbound-call", {})
    assert status == 400 and "extension" in error["detail"]
    status, error = daemon.request("POST", "/v1/calls", {"to": "phone", "agent_id": "default",
                                                         "choice": {"options": [
                                                             {"value": "yes"}]}})
    assert status == 400 and "choice" in error["detail"]

    message = "Your parcel has arrived at the front desk."
    call_id = daemon.request("POST", "/call", {"message": message, "extension": "phone",
                                               "callback_url": webhook.url})[1]["call_id"]
    payload = webhook.wait()[0]
    assert payload["status"] == "completed" and "outcome" not in payload  # as seed 003 has it
    record = daemon.request("GET", f"/call/{call_id}")[1]
    assert record["thread_id"] and "outcome" not in record
    thread = daemon.request("GET", f"/v1/threads/{record['thread_id']}")[1]
    assert thread["call_id"] == call_id and thread["channel"] == "call"
    assert [(m["role"], m["content"]) for m in thread["history"]] == [("assistant", message)]


def test_a_text_thread_answers_from_the_agents_knowledge(start_daemon, phone):
    """The same question as on the phone (test_agent_calls.py), typed: the clinic's agent
    answers with its row's fact; the bakery's, without that row, says it does not know."""
    from sipassist.agents.grounding import DONT_KNOW

    from .test_agent_calls import BAKERY, CLINIC, QUESTION

    daemon = start_daemon(phone)
    for table, rows in (("clinic", CLINIC), ("bakery", BAKERY)):
        assert daemon.request("POST", "/v1/knowledge", {"name": table})[0] == 201
        assert daemon.request("POST", f"/v1/knowledge/{table}/rows",
                              {"rows": [{"content": row} for row in rows]})[0] == 201
    for agent, table in (("reception", "clinic"), ("bakery", "bakery")):
        status, body = daemon.request("POST", "/v1/agents", {"id": agent, "knowledge": [table],
                                                             "tools": []})
        assert status == 201, body

    def ask(agent: str) -> str:
        tid = daemon.request("POST", "/v1/threads", {"agent_id": agent})[1]["id"]
        status, run = daemon.request("POST", f"/v1/threads/{tid}/run",
                                     {"role": "user", "content": QUESTION})
        assert status == 200, run
        return run["choices"][0]["message"]["content"]

    clinic = ask("reception")
    assert "24 hours" in clinic and "30 dollars" in clinic, clinic
    bakery = ask("bakery")
    assert bakery == DONT_KNOW, bakery

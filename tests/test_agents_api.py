"""/v1/agents on a running daemon: create, read, change, delete, refusals, and a restart."""

from __future__ import annotations

import pytest

from sipassist.voice.llm import SYSTEM_PROMPT

pytestmark = [pytest.mark.telephony]

RECEPTION = {
    "id": "reception", "name": "Clinic reception",
    "instructions": "You are the receptionist of Riverside Clinic.",
    "persona": {"greeting": "Riverside Clinic, how can I help?"},
    "tools": ["datetime"], "knowledge": ["clinic"], "lines": ["reception", "1050"],
}


def error(body: dict) -> str:
    assert body["error"]["message"] == body["detail"], body  # the shared envelope
    return body["detail"]


def test_the_default_agent_is_todays_assistant(start_daemon, phone):
    daemon = start_daemon(phone, conversation={"greeting": "Hi, it's the box."})
    status, agents = daemon.request("GET", "/v1/agents")
    assert status == 200 and [a["id"] for a in agents] == ["default"], agents
    default = agents[0]
    assert default["default"] is True and default["lines"] == []
    assert default["persona"]["greeting"] == "Hi, it's the box."
    assert default["instructions"] == SYSTEM_PROMPT
    assert default["tools"] == sorted(t["name"] for t in daemon.request("GET", "/tools")[1])
    assert {"CALC", "DATETIME", "SET_TIMER", "WEATHER", "SEND_TEXT"} <= set(default["tools"])
    status, body = daemon.request("DELETE", "/v1/agents/default")
    assert status == 409 and "cannot be deleted" in error(body)


def test_agent_life_and_refusals(start_daemon, phone):
    daemon = start_daemon(phone, agents={"max_agents": 3})
    status, body = daemon.request("POST", "/v1/agents", RECEPTION)
    assert status == 400 and "'clinic'" in error(body) and "knowledge" in body["detail"]
    assert daemon.request("POST", "/v1/knowledge", {"name": "clinic"})[0] == 201

    status, agent = daemon.request("POST", "/v1/agents", RECEPTION)
    assert status == 201, agent
    assert agent["tools"] == ["DATETIME"] and agent["knowledge"] == ["clinic"]
    assert agent["lines"] == ["reception", "1050"] and agent["default"] is False
    assert agent["persona"] == {"greeting": "Riverside Clinic, how can I help?",
                                "farewell": "Goodbye!", "speed": 1.0, "filler": "One moment."}
    assert agent["created_at"] == agent["updated_at"]
    assert daemon.request("GET", "/v1/agents/reception") == (200, agent)
    # The line has a baresip account of its own now (a call to it is answered: see
    # test_agent_calls.py); the box's accounts file has it for a restart.
    accounts = (daemon.settings.baresip_dir / "accounts").read_text()
    assert "<sip:reception@" in accounts and "<sip:1050@" in accounts

    # Refusals name what to fix, and change nothing.
    for body, status_wanted, words in [
        ({"tools": ["DATETIME", "TELEPORT"]}, 400, "'TELEPORT'"),
        ({"knowledge": ["menu"]}, 400, "'menu'"),
        ({"lines": ["1050"]}, 409, "'reception'"),
        ({"lines": ["not a line"]}, 400, "lines"),
        ({"name": "x" * 101}, 400, "name"),
        ({"persona": {"speed": 9}}, 400, "speed"),
        ({"colour": "blue"}, 400, "colour"),
        ({"model": "gpt-9"}, 400, "gpt-9"),
    ]:
        status, answer = daemon.request("POST", "/v1/agents", {"id": "other", **body})
        assert status == status_wanted and words in error(answer), (body, answer)
    assert daemon.request("GET", "/v1/agents/other")[0] == 404
    status, answer = daemon.request("POST", "/v1/agents", {"id": "reception"})
    assert status == 409, answer

    # PATCH changes only what it names; a persona's fields too.
    status, patched = daemon.request("PATCH", "/v1/agents/reception",
                                     {"name": "Front desk", "persona": {"farewell": "Bye now."}})
    assert status == 200, patched
    assert patched["name"] == "Front desk" and patched["lines"] == agent["lines"]
    assert patched["persona"]["greeting"] == agent["persona"]["greeting"]
    assert patched["persona"]["farewell"] == "Bye now."
    assert patched["updated_at"] >= agent["updated_at"]
    # The persona endpoint (seed 002) likewise.
    status, personal = daemon.request("POST", "/v1/agents/reception/persona",
                                      {"greeting": "Front desk here.", "speed": 1.2})
    assert status == 200 and personal["persona"] == {
        "greeting": "Front desk here.", "farewell": "Bye now.", "speed": 1.2,
        "filler": "One moment."}, personal
    # A table deleted since does not block changing the agent's other fields.
    assert daemon.request("DELETE", "/v1/knowledge/clinic")[0] == 204
    status, renamed = daemon.request("PATCH", "/v1/agents/reception", {"name": "Desk"})
    assert status == 200 and renamed["knowledge"] == ["clinic"], renamed
    # PUT resets what it leaves out.
    status, put = daemon.request("PUT", "/v1/agents/reception", {"name": "Reset"})
    assert status == 200, put
    every_tool = sorted(t["name"] for t in daemon.request("GET", "/tools")[1])
    assert put["lines"] == [] and put["knowledge"] == [] and put["tools"] == every_tool \
        and put["instructions"] == SYSTEM_PROMPT
    assert "<sip:reception@" not in (daemon.settings.baresip_dir / "accounts").read_text()

    for method, path, body in [("GET", "/v1/agents/nobody", None),
                               ("PATCH", "/v1/agents/nobody", {"name": "x"}),
                               ("PUT", "/v1/agents/nobody", {"name": "x"}),
                               ("DELETE", "/v1/agents/nobody", None),
                               ("POST", "/v1/agents/nobody/persona", {"greeting": "Hi"})]:
        status, answer = daemon.request(method, path, body)
        assert status == 404 and "'nobody'" in error(answer), (method, answer)

    # The count is bounded ([agents] max_agents: the default, reception and one more).
    assert daemon.request("POST", "/v1/agents", {"id": "third"})[0] == 201
    status, answer = daemon.request("POST", "/v1/agents", {"id": "fourth"})
    assert status == 413 and "max_agents" in error(answer)

    assert daemon.request("DELETE", "/v1/agents/third")[0] == 204
    assert daemon.request("GET", "/v1/agents/third")[0] == 404
    assert [a["id"] for a in daemon.request("GET", "/v1/agents")[1]] == ["default", "reception"]


def test_agents_outlive_a_restart(start_daemon, phone, tmp_path):
    state = tmp_path / "kept"
    daemon = start_daemon(phone, state=state)
    assert daemon.request("POST", "/v1/knowledge", {"name": "clinic"})[0] == 201
    status, made = daemon.request("POST", "/v1/agents", RECEPTION)
    assert status == 201, made
    status, default = daemon.request("PATCH", "/v1/agents/default",
                                     {"persona": {"greeting": "Changed."}})
    assert status == 200, default
    daemon.stop()

    again = start_daemon(phone, state=state)
    assert again.request("GET", "/v1/agents/reception") == (200, made)
    assert again.request("GET", "/v1/agents/default") == (200, default)
    assert "<sip:1050@" in (again.settings.baresip_dir / "accounts").read_text()

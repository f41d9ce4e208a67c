"""Calls come first: the model gate between live calls and API requests, with real threads."""

from __future__ import annotations

import threading

import pytest

from sipassist.voice.gate import GateSettings, ModelBusy, ModelGates

WAIT = 10.0  # bound on every wait in these tests; none should come near it


def test_a_call_waits_only_for_the_slice_running_not_for_queued_api_requests():
    gates = ModelGates(GateSettings(api_wait_seconds=WAIT, api_queue=4, call_linger_seconds=0))
    in_slice, release = threading.Event(), threading.Event()
    order: list[str] = []

    def work():  # the model's work, one item per slice; the first takes a while
        for step in range(3):
            if step == 0:
                in_slice.set()
                assert release.wait(WAIT)
            yield step

    def api_request():
        with gates.api("tts"):
            for step in gates.api_slices("tts", work()):
                order.append(f"api-{step}")

    worker = threading.Thread(target=api_request)
    worker.start()
    assert in_slice.wait(WAIT)
    # The API request is inside its first slice (making item 0): the call must wait for it...
    got_it = threading.Event()

    def call():
        with gates.call("tts"):
            order.append("call")
            got_it.set()

    caller = threading.Thread(target=call)
    caller.start()
    assert not got_it.wait(0.2)  # blocked by the running slice (an event that must NOT come)
    release.set()
    assert got_it.wait(WAIT)
    caller.join(WAIT)
    worker.join(WAIT)
    # ... and only for it: the call came before the request's later slices.
    assert order.index("call") <= 1 and order[-1] == "api-2", order


def test_api_requests_get_busy_while_a_call_holds_the_model():
    refused: list[str] = []
    gates = ModelGates(GateSettings(api_wait_seconds=0.2, api_queue=4, call_linger_seconds=0),
                       on_refused=refused.append)
    with gates.call("asr"):
        with pytest.raises(ModelBusy) as busy:
            with gates.api("tts"):  # another model: the CPU is the call's too
                pass
    assert busy.value.retry_after >= 1 and "calls come first" in busy.value.detail
    assert refused == ["tts"]
    with gates.api("tts"):  # free again once the call is done
        pass


def test_a_speaking_caller_holds_api_work_back():
    speaking = threading.Event()
    speaking.set()
    gates = ModelGates(GateSettings(api_wait_seconds=0.2, call_linger_seconds=0),
                       caller_speaking=speaking.is_set)
    with pytest.raises(ModelBusy):
        with gates.api("llm"):
            pass
    speaking.clear()
    with gates.api("llm"):
        pass


def test_the_api_queue_is_bounded():
    gates = ModelGates(GateSettings(api_wait_seconds=WAIT, api_queue=1, call_linger_seconds=0))
    holding, done = threading.Event(), threading.Event()
    waiting = threading.Event()

    def first():
        with gates.api("asr"):
            holding.set()
            assert done.wait(WAIT)

    def second():
        waiting.set()
        with gates.api("asr"):
            pass

    threads = [threading.Thread(target=first)]
    threads[0].start()
    assert holding.wait(WAIT)
    threads.append(threading.Thread(target=second))
    threads[1].start()
    assert waiting.wait(WAIT)
    for _ in range(500):  # until the second request is counted as waiting (bounded)
        if gates.waiting()["asr"] == 1:
            break
        threading.Event().wait(0.01)
    assert gates.waiting()["asr"] == 1
    with pytest.raises(ModelBusy) as busy:  # a third finds the queue full at once
        with gates.api("asr"):
            pass
    assert "already wait" in busy.value.detail
    done.set()
    for thread in threads:
        thread.join(WAIT)


def test_calls_at_once_take_turns_on_a_model_longest_waiting_first():
    """Three calls want the ASR while a fourth uses it: each waits (none fails), and they get
    it one at a time in the order they asked; a nested use by the holder does not block."""
    gates = ModelGates(GateSettings(call_linger_seconds=0))
    release = threading.Event()
    using: list[str] = []
    inside = {"now": 0, "most": 0}
    lock = threading.Lock()

    def turn(name: str, asked: threading.Event | None = None, hold: bool = False) -> None:
        if asked:
            asked.set()
        with gates.call("asr"):
            with lock:
                inside["now"] += 1
                inside["most"] = max(inside["most"], inside["now"])
                using.append(name)
            if hold:
                with gates.call("asr"):  # nested: the same thread goes on
                    assert release.wait(WAIT)
            with lock:
                inside["now"] -= 1

    first = threading.Thread(target=turn, args=("first", None, True))
    first.start()
    waiting = []
    for name in ("a", "b", "c"):
        asked = threading.Event()
        thread = threading.Thread(target=turn, args=(name, asked))
        thread.start()
        assert asked.wait(WAIT)
        # Its turn is queued once it waits on the gate's condition (bounded poll, no sleep).
        for _ in range(1000):
            with gates._cond:
                if len(gates._call_turns["asr"]) == len(waiting) + 1:
                    break
            threading.Event().wait(0.001)
        waiting.append(thread)
    assert using == ["first"]
    release.set()
    for thread in (first, *waiting):
        thread.join(WAIT)
        assert not thread.is_alive()
    assert using == ["first", "a", "b", "c"] and inside["most"] == 1, (using, inside)

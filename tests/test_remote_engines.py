"""Remote ASR/TTS: box B hears and speaks through box A's OpenAI-compatible /v1 audio API.

Both daemons are real (their own jackd, baresip and API on loopback); A runs as `sipassist run`
in its own process. A test phone calls B and
asks a question; A's metrics show it did the work. Then A stops, mid-call: B's next answer comes
from its own local models, and the call goes on.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sipassist.telephony.events import CALL_CLOSED, CALL_ESTABLISHED

from .audio_helpers import heard_audio
from .conftest import PortBlocks, free_tcp_port, loopback_sip_toml, stop_process
from .test_conversation import RATE, finished_inbound, speech_track



def metric(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def own_metric(daemon, name: str, **labels: str) -> float:
    return metric(daemon.daemon.metrics.exposition().decode(), name, **labels)


@contextmanager
def server_box(tmp: Path, ports: PortBlocks, models_dir: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    """Box A: `sipassist run` in its own process (its own JACK client), no LLM. Yields its URL."""
    base, api_port = ports.take(), free_tcp_port()
    config = tmp / "a.toml"
    config.write_text(f"""
{loopback_sip_toml(base)}
[api]
host = "127.0.0.1"
port = {api_port}

[audio]
jack_server = "sipassist-test-{base}"

[paths]
state_dir = "{tmp / "a-state"}"
runtime_dir = "{tmp / "a-run"}"
models_dir = "{models_dir}"

[llm]
backend = "none"
""")
    log = open(tmp / "a.log", "wb")
    process = subprocess.Popen([sys.executable, "-m", "sipassist", "run", "--config",
                                str(config)], stdin=subprocess.DEVNULL, stdout=log,
                               stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{api_port}"
    try:
        for _ in range(1200):  # until its API answers (models load first), at most ~2 min
            try:
                urllib.request.urlopen(url + "/health", timeout=2).read()
                break
            except OSError:
                assert process.poll() is None, (tmp / "a.log").read_text()[-3000:]
                threading.Event().wait(0.1)
        else:
            raise AssertionError("box A did not come up: " + (tmp / "a.log").read_text()[-3000:])
        yield url, process
    finally:
        stop_process(process, 20)
        log.close()


def answers(daemon) -> list[str]:
    record = daemon.daemon.queue.recent(1, "inbound")
    if not record:
        return []
    return [turn["text"] for turn in record[0].transcript if turn.get("tool") == "CALC"]


@pytest.mark.telephony
@pytest.mark.models
@pytest.mark.heard
def test_remote_engines_and_falling_back_when_the_remote_stops(start_daemon, phone, synthesizer,
                                                                tmp_path, ports, models_dir):
    with server_box(tmp_path, ports, models_dir) as (url_a, box_a):
        remote = {"asr_backend": "remote", "asr_url": url_a + "/v1",
                  "tts_backend": "remote", "tts_url": url_a + "/v1",
                  "remote_timeout_seconds": 5.0}
        box_b = start_daemon(phone, models=remote)
        phone.set_speech(speech_track(synthesizer, [
            6.0, "What's 25 times 4 plus 10?", 9.0,
            "What's 6 times 7?", 9.0, "Goodbye.", 3.0]), RATE)
        phone.command("dial", box_b.sip_uri)
        phone.wait_event(CALL_ESTABLISHED)
        # The first answer was worked out with A's models (bounded wait on B's transcript).
        for _ in range(1200):
            if answers(box_b):
                break
            threading.Event().wait(0.05)
        record = box_b.daemon.queue.recent(1, "inbound")
        assert answers(box_b) == ["The result is 110"], record and record[0].transcript
        a_metrics = urllib.request.urlopen(url_a + "/metrics", timeout=10).read().decode()
        stop_process(box_a, 20)  # mid-call: the second question is still to come
    requests = "sipassist_api_model_requests_total"
    assert metric(a_metrics, requests, model="asr", status="200") >= 1
    assert metric(a_metrics, requests, model="tts", status="200") >= 2  # greeting, answer
    phone.wait_event(CALL_CLOSED, timeout=90)
    record = finished_inbound(box_b)
    assert record["status"] == "completed"
    assert answers(box_b) == ["The result is 110", "The result is 42"], record["transcript"]
    assert own_metric(box_b, "sipassist_remote_fallbacks_total", model="asr") >= 1
    assert own_metric(box_b, "sipassist_remote_fallbacks_total", model="tts") >= 1
    # The answer in B's own voice reached the phone.
    assert heard_audio(phone.recording(), synthesizer.synthesize("The result is 42"), RATE) > 0.6


def test_check_says_whether_the_remote_engines_answer(tmp_path):
    """`sipassist check`: a remote that answers GET /v1/models is OK; one that is down a WARN
    (the local model stands in)."""
    import json
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from sipassist.check import Checker
    from sipassist.config import parse

    class Models(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (stdlib name)
            body = json.dumps({"object": "list", "data": [{"id": "whisper-base"}]}).encode()
            self.send_response(200 if self.path == "/v1/models" else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Models)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        up = f"http://127.0.0.1:{server.server_address[1]}"
        checker = Checker(None)
        checker.settings = parse({"models": {"asr_backend": "remote", "asr_url": up + "/v1",
                                             "tts_backend": "remote",
                                             "tts_url": f"http://127.0.0.1:{free_tcp_port()}"}})
        results = []
        checker._emit = results.append
        checker.check_remote_engines()
    finally:
        server.shutdown()
        server.server_close()
    by_name = {r.name: r for r in results}
    assert by_name["remote asr"].status == "OK" and "whisper-base" in by_name["remote asr"].detail
    assert by_name["remote tts"].status == "WARN"
    assert "local model answers" in by_name["remote tts"].detail

"""The box's models as endpoints: /v1/llms, /v1/asr, /v1/tts, the OpenAI aliases and /metrics.

One daemon (real Piper, Whisper and, where installed, Qwen 0.5B) serves the module; OpenAI's
own client library talks to it as to OpenAI.
"""

from __future__ import annotations

import io
import json
import threading
import urllib.error
import urllib.request
import uuid
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from sipassist.voice.asr import word_error_rate
from sipassist.voice.audio_files import decode, encode_wav
from sipassist.voice.resample import resample, to_pcm16

from .conftest import PortBlocks, RunningDaemon, daemon_settings

pytestmark = [pytest.mark.telephony, pytest.mark.models]

SENTENCE = "Please call the front desk about the broken window tomorrow morning."


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


def send(url: str, method: str = "GET", body: bytes | None = None,
         content_type: str = "application/json", timeout: float = 120) -> Reply:
    request = urllib.request.Request(url, data=body, method=method,
                                     headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Reply(response.status, dict(response.headers), response.read())
    except urllib.error.HTTPError as err:
        return Reply(err.code, dict(err.headers), err.read())


def multipart(fields: dict[str, str], file: bytes | None, filename: str = "speech.wav",
              file_type: str = "audio/wav") -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
             for k, v in fields.items()]
    if file is not None:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                     f'filename="{filename}"\r\nContent-Type: {file_type}\r\n\r\n'.encode()
                     + file + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


@dataclass
class Box:
    daemon: RunningDaemon
    url: str

    def post_json(self, path: str, body: object) -> Reply:
        return send(self.url + path, "POST", json.dumps(body).encode())

    def metrics(self) -> dict[tuple[str, tuple], float]:
        reply = send(self.url + "/metrics")
        assert reply.status == 200 and reply.headers["Content-Type"].startswith("text/plain")
        samples = {}
        for family in text_string_to_metric_families(reply.body.decode()):
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return samples

    def has_llm(self) -> bool:
        if self.daemon.daemon.models.llm_name is None:
            pytest.skip("llama-cpp-python is not installed")
        return True


@pytest.fixture(scope="module")
def box(request, tmp_path_factory: pytest.TempPathFactory, ports: PortBlocks, models_dir: Path,
        synthesizer, transcriber) -> Iterator[Box]:
    tmp = tmp_path_factory.mktemp("model_api")
    try:
        chat = request.getfixturevalue("chat")
    except pytest.skip.Exception:
        chat = None
    llm = {"backend": "local", "tool_routing": False} if chat else {"backend": "none"}
    settings = daemon_settings(tmp, ports, 5060, llm=llm,
                               paths={"models_dir": str(models_dir)},
                               model_api={"api_wait_seconds": 1.0})
    daemon = RunningDaemon(settings, synthesizer, transcriber, chat)
    try:
        yield Box(daemon, daemon.url)
    finally:
        daemon.stop()


def wav_of(reply: Reply) -> tuple[np.ndarray, int]:
    assert reply.status == 200, reply.body[:300]
    assert reply.headers["Content-Type"] == "audio/wav"
    return decode(reply.body)


# -- TTS -> ASR --------------------------------------------------------------------------------

def test_speech_round_trip_gives_the_words_back(box):
    models = send(box.url + "/v1/tts/models").json()["models"]
    assert models and models[0]["voices"] == ["en_US-joe-medium"]
    samples, rate = wav_of(box.post_json("/v1/tts/synthesize", {"text": SENTENCE}))
    assert rate == models[0]["sample_rate"] and samples.size > rate  # over a second of speech

    reply = send(box.url + "/v1/asr/transcribe", "POST", encode_wav(samples, rate), "audio/wav")
    assert reply.status == 200, reply.body
    result = reply.json()
    assert word_error_rate(SENTENCE, result["text"]) <= 0.15, result["text"]
    assert result["language"] == "en" and result["execution_time"] > 0
    assert abs(result["duration"] - samples.size / rate) < 0.01
    assert result["segments"] and result["segments"][0]["text"] == result["text"]


def test_any_rate_and_channel_count_as_multipart_and_flac(box):
    speech, rate = wav_of(box.post_json("/v1/tts/synthesize",
                                        {"text": SENTENCE, "sample_rate": 44100, "speed": 1.2}))
    assert rate == 44100
    stereo = np.stack([speech, speech * 0.5], axis=1).reshape(-1)
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:  # 44.1 kHz stereo 16-bit
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(to_pcm16(stereo))
    body, content_type = multipart({"language": "en"}, out.getvalue())
    reply = send(box.url + "/v1/asr/transcribe", "POST", body, content_type)
    assert reply.status == 200, reply.body
    assert word_error_rate(SENTENCE, reply.json()["text"]) <= 0.15, reply.json()

    av = pytest.importorskip("av")
    flac = io.BytesIO()
    with av.open(flac, "w", format="flac") as container:
        stream = container.add_stream("flac", rate=8000, layout="mono")
        frame = av.AudioFrame.from_ndarray(
            (resample(speech, rate, 8000) * 32767).astype(np.int16)[None, :], format="s16",
            layout="mono")
        frame.sample_rate = 8000
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    reply = send(box.url + "/v1/asr/transcribe", "POST", flac.getvalue(), "audio/flac")
    assert reply.status == 200, reply.body
    assert word_error_rate(SENTENCE, reply.json()["text"]) <= 0.25, reply.json()


def test_a_long_recording_comes_back_in_segments(box):
    speech, rate = wav_of(box.post_json("/v1/tts/synthesize", {"text": SENTENCE}))
    gap = np.zeros(rate * 4, np.float32)
    long = np.concatenate([speech, gap] * 6)  # over 28 s: the segmenting path
    reply = send(box.url + "/v1/asr/transcribe", "POST", encode_wav(long, rate), "audio/wav")
    assert reply.status == 200, reply.body
    result = reply.json()
    assert result["duration"] > 28 and len(result["segments"]) >= 2, result
    starts = [s["start"] for s in result["segments"]]
    assert starts == sorted(starts) and result["segments"][-1]["end"] <= result["duration"] + 1
    assert result["text"].lower().count("window") >= 4, result["text"]  # 6 said; Whisper may miss two


# -- OpenAI's client -------------------------------------------------------------------------

def test_openai_client_speaks_and_transcribes(box):
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=box.url + "/v1", api_key="unused")
    speech = client.audio.speech.create(model="tts-1", voice="alloy", input=SENTENCE,
                                        response_format="wav")
    samples, rate = decode(speech.read())
    assert samples.size > rate
    text = client.audio.transcriptions.create(
        model="whisper-1", file=("speech.wav", encode_wav(samples, rate), "audio/wav")).text
    assert word_error_rate(SENTENCE, text) <= 0.15, text
    listed = {m.id for m in client.models.list()}
    assert {"whisper-base", "piper"} <= listed


@pytest.mark.llm
def test_openai_client_chats_and_streams(box):
    box.has_llm()
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=box.url + "/v1", api_key="unused")
    model = box.daemon.daemon.models.llm_name
    question = [{"role": "user", "content": "Name one colour of the rainbow. One word."}]
    answer = client.chat.completions.create(model=model, messages=question, max_tokens=16,
                                            temperature=0)
    assert answer.choices[0].message.content.strip()
    assert answer.usage.completion_tokens >= 1 and answer.usage.prompt_tokens > 5
    assert answer.choices[0].finish_reason in ("stop", "length")

    pieces, finish = [], None
    for chunk in client.chat.completions.create(model=model, messages=question, max_tokens=16,
                                                temperature=0, stream=True):
        if chunk.choices:
            pieces.append(chunk.choices[0].delta.content or "")
            finish = chunk.choices[0].finish_reason or finish
    assert len([p for p in pieces if p]) >= 1 and finish in ("stop", "length")
    assert "".join(pieces) == answer.choices[0].message.content  # temperature 0: the same


@pytest.mark.llm
def test_native_completion_and_stream_in_the_run_shape(box):
    box.has_llm()
    listed = send(box.url + "/v1/llms/models").json()["models"]
    assert [m["id"] for m in listed] == [box.daemon.daemon.models.llm_name]
    body = {"messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 12,
            "temperature": 0}
    reply = box.post_json("/v1/llms/completion", body)
    assert reply.status == 200, reply.body
    run = reply.json()
    assert set(run) == {"choices", "created", "model", "usage", "execution_time"}
    assert run["choices"][0]["message"]["role"] == "assistant"
    assert run["choices"][0]["message"]["content"].strip()
    assert run["usage"]["output_tokens"] >= 1 and run["usage"]["input_tokens"] > 3

    reply = box.post_json("/v1/llms/stream", body)
    assert reply.status == 200 and reply.headers["Content-Type"].startswith("text/event-stream")
    events = [block.split("\n", 1) for block in reply.body.decode().strip().split("\n\n")]
    names = [name.removeprefix("event: ") for name, _ in events]
    datas = [json.loads(data.removeprefix("data: ")) for _, data in events]
    assert names[-1] == "done" and set(names[:-1]) == {"delta"}, names
    assert "".join(d["content"] for d in datas[:-1]) == run["choices"][0]["message"]["content"]
    assert datas[-1]["usage"]["output_tokens"] == len(names) - 1


# -- bad input ------------------------------------------------------------------------------

def refused(reply: Reply, status: int, *words: str) -> str:
    assert reply.status == status, (reply.status, reply.body[:300])
    detail = reply.json()["detail"]
    for word in words:
        assert word in detail, detail
    return detail


def test_bad_tts_and_asr_requests_say_what_to_fix(box):
    tts = "/v1/tts/synthesize"
    refused(box.post_json(tts, {}), 400, "text")
    refused(box.post_json(tts, {"text": "Hi", "voice": "nobody"}), 400, "voice", "en_US-joe")
    refused(box.post_json(tts, {"text": "Hi", "model": "tts-9"}), 400, "model", "piper")
    refused(box.post_json(tts, {"text": "Hi", "speed": 9}), 400, "speed")
    refused(box.post_json(tts, {"text": "Hi", "sample_rate": 100}), 400, "sample_rate")
    refused(box.post_json(tts, {"text": "Hi", "colour": "red"}), 400, "colour")
    refused(box.post_json(tts, {"text": "word " * 1000}), 413, "4000")
    refused(box.post_json("/v1/audio/speech", {"model": "tts-1", "input": "Hi", "voice": "alloy",
                                               "response_format": "mp3"}), 400, "wav")

    asr = box.url + "/v1/asr/transcribe"
    refused(send(asr, "POST", b"RIFF\x00\x00\x00\x00WAVEjunk", "audio/wav"), 415, "WAV")
    refused(send(asr, "POST", b"ID3\x03 an mp3", "audio/mpeg"), 415, "WAV or FLAC")
    refused(send(asr, "POST", b"fLaC broken", "audio/flac"), 415, "FLAC")
    refused(send(asr, "POST", b"{}", "application/json"), 415, "multipart")
    body, content_type = multipart({"language": "en"}, None)
    refused(send(asr, "POST", body, content_type), 400, "file")
    alaw = bytearray(encode_wav(np.zeros(1600, np.float32), 16000))
    alaw[20:22] = (6).to_bytes(2, "little")
    refused(send(asr, "POST", bytes(alaw), "audio/wav"), 415, "A-law")
    wav = encode_wav(np.zeros(1600, np.float32), 16000)
    refused(send(asr + "?language=fr", "POST", wav, "audio/wav"), 400, "English")
    refused(send(asr + "?model=whisper-huge", "POST", wav, "audio/wav"), 400, "whisper-base")


def test_bad_llm_requests_say_what_to_fix(box):
    box.has_llm()
    path = "/v1/llms/completion"
    refused(box.post_json(path, {}), 400, "messages")
    refused(box.post_json(path, {"messages": "hello"}), 400, "messages")
    refused(box.post_json(path, {"messages": [{"role": "robot", "content": "x"}]}), 400,
            "messages[0].role")
    refused(box.post_json(path, {"messages": [{"role": "user", "content": 5}]}), 400,
            "messages[0].content")
    refused(box.post_json(path, {"messages": [{"role": "user", "content": "x"}],
                                 "model": "gpt-5"}), 400, "gpt-5")
    refused(box.post_json(path, {"messages": [{"role": "user", "content": "x"}],
                                 "max_tokens": 0}), 400, "max_tokens")
    refused(box.post_json("/v1/chat/completions", {"messages": [
        {"role": "user", "content": "word " * 3000}]}), 400, "context")


# -- calls come first -------------------------------------------------------------------------

def test_api_work_waits_for_a_call_then_gets_503(box):
    before = box.metrics()[("sipassist_api_model_busy_total", (("model", "tts"),))]
    with box.daemon.daemon.gates.call("asr"):  # a live call's turn is using Whisper
        reply = box.post_json("/v1/tts/synthesize", {"text": "Hello there."})
    refused(reply, 503, "calls come first")
    assert int(reply.headers["Retry-After"]) >= 1
    after = box.metrics()[("sipassist_api_model_busy_total", (("model", "tts"),))]
    assert after == before + 1
    wav_of(box.post_json("/v1/tts/synthesize", {"text": "Hello there."}))  # then it works


# -- metrics ------------------------------------------------------------------------------

def test_metrics_count_a_placed_call_and_api_work(box, tmp_path, ports):
    key = ("sipassist_calls_total", (("direction", "outbound"), ("status", "completed")))
    phone = ports.phone(tmp_path / "phone")
    try:
        before = box.metrics()
        reply = box.post_json("/call", {"message": "This is a metrics test.",
                                        "extension": phone.uri})
        assert reply.status == 200, reply.body
        assert box.daemon.daemon.queue.wait_idle(timeout=60)
        # The call is counted as it is handed on, a moment after its slot is freed (bounded).
        counted = box.daemon.daemon.metrics.registry.get_sample_value
        for _ in range(200):  # in-process: polling over HTTP would spend the rate limit
            if (counted(key[0], dict(key[1])) or 0) > before.get(key, 0):
                break
            threading.Event().wait(0.05)
        wav_of(box.post_json("/v1/tts/synthesize", {"text": "Counting."}))
        after = box.metrics()
    finally:
        phone.stop()
    assert after[key] == before.get(key, 0) + 1
    tts_ok = ("sipassist_api_model_requests_total", (("model", "tts"), ("status", "200")))
    assert after[tts_ok] >= before.get(tts_ok, 0) + 1
    assert after[("sipassist_active_calls", ())] == 0
    assert after[("sipassist_queue_length", ())] == 0
    assert ("sipassist_audio_xruns_total", ()) in after
    assert after[("process_resident_memory_bytes", ())] > 50e6
    assert after[("sipassist_api_model_seconds_count", (("model", "tts"),))] >= 1

"""Uploaded audio: WAV of every common sample format and channel count, FLAC, and bad files."""

from __future__ import annotations

import io
import struct
import wave

import numpy as np
import pytest

from sipassist.voice.audio_files import AudioError, decode, encode_wav

RATE = 22050
TONE = (0.5 * np.sin(2 * np.pi * 440 * np.arange(RATE // 10) / RATE)).astype(np.float32)


def pcm_wav(samples: np.ndarray, width: int, channels: int, rate: int = RATE) -> bytes:
    interleaved = np.repeat(samples, channels)
    if width == 1:
        raw = (interleaved * 127 + 128).astype(np.uint8).tobytes()
    elif width == 3:
        ints = (interleaved * (2**23 - 1)).astype(np.int32)
        raw = b"".join(int(v).to_bytes(3, "little", signed=True) for v in ints)
    else:
        dtype = {2: "<i2", 4: "<i4"}[width]
        raw = (interleaved * (2 ** (8 * width - 1) - 1)).astype(dtype).tobytes()
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(width)
        wav.setframerate(rate)
        wav.writeframes(raw)
    return out.getvalue()


def float_wav(samples: np.ndarray, channels: int) -> bytes:
    data = np.repeat(samples, channels).astype("<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, channels, RATE, RATE * 4 * channels, 4 * channels, 32)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + \
        struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


@pytest.mark.parametrize("width", [1, 2, 3, 4])
@pytest.mark.parametrize("channels", [1, 2, 6])
def test_pcm_wav_of_any_width_and_channel_count(width, channels):
    samples, rate = decode(pcm_wav(TONE, width, channels))
    assert rate == RATE and samples.dtype == np.float32 and samples.size == TONE.size
    assert np.max(np.abs(samples - TONE)) < (0.02 if width == 1 else 1e-3)


def test_float_wav():
    samples, rate = decode(float_wav(TONE, 2))
    assert rate == RATE and np.max(np.abs(samples - TONE)) < 1e-6


def test_flac_when_a_decoder_is_there():
    av = pytest.importorskip("av")
    out = io.BytesIO()
    with av.open(out, "w", format="flac") as container:
        stream = container.add_stream("flac", rate=RATE, layout="stereo")
        frame = av.AudioFrame.from_ndarray(
            (np.repeat(TONE, 2) * 32767).astype(np.int16)[None, :], format="s16",
            layout="stereo")
        frame.sample_rate = RATE
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    samples, rate = decode(out.getvalue())
    assert rate == RATE and abs(samples.size - TONE.size) <= 1
    assert np.max(np.abs(samples[: TONE.size] - TONE)) < 1e-3


@pytest.mark.parametrize("data, words", [
    (b"", "empty"),
    (b"ID3\x03 mp3 data", "MP3"),
    (b"hello world", "not audio"),
    (b"RIFF\x00\x00\x00\x00WAVE", "fmt"),
    (b"fLaC\x00\x00 broken", "FLAC"),
])
def test_what_is_not_audio_is_named(data, words):
    with pytest.raises(AudioError, match=words):
        decode(data)


def test_alaw_is_refused_by_name():
    wav = bytearray(encode_wav(TONE, RATE))
    wav[20:22] = (6).to_bytes(2, "little")
    with pytest.raises(AudioError, match="A-law"):
        decode(bytes(wav))


def test_encode_then_decode_is_16_bit_exact():
    samples, rate = decode(encode_wav(TONE, 16000))
    assert rate == 16000 and np.max(np.abs(samples - TONE)) < 1 / 16000

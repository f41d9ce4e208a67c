"""Audio files in and out of the API: WAV or FLAC of any rate and channel count, to float mono.

PCM WAV is read with Python's `wave` (8/16/24/32-bit integer) or as IEEE float by hand; FLAC,
and any WAV `wave` cannot read, with `soundfile` where installed, else PyAV (faster-whisper's
own decoder, always present with it). Every failure is `AudioError` naming what is wrong.
"""

from __future__ import annotations

import io
import struct
import wave

import numpy as np

from .resample import resample, to_pcm16

MAX_CALL_SECONDS = 600  # longer audio is not played into a call: no place for an hour of music


class AudioError(ValueError):
    """The upload is not audio we can decode; the message says what is wrong."""


def kind_of(data: bytes) -> str:
    """"wav", "flac" or a description of what the bytes look like."""
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "wav"
    if data[:4] == b"fLaC":
        return "flac"
    if not data:
        return "an empty body"
    if data[:4] in (b"OggS", b"ID3\x03", b"ID3\x04") or data[:2] == b"\xff\xfb":
        return "Ogg or MP3 audio"
    return f"not audio (starts with {data[:8]!r})"


def decode(data: bytes) -> tuple[np.ndarray, int]:
    """(float32 mono samples in [-1, 1], sample rate) of a WAV or FLAC file's bytes."""
    kind = kind_of(data)
    if kind == "wav":
        try:
            return _read_wav(data)
        except AudioError:
            raise
        except (wave.Error, EOFError, struct.error, ValueError) as exc:
            decoded = _other_decoders(data)  # e.g. WAVE_FORMAT_EXTENSIBLE, A-law
            if decoded is None:
                raise AudioError(f"the WAV file cannot be read: {exc}") from None
            return decoded
    if kind == "flac":
        decoded = _other_decoders(data)
        if decoded is None:
            raise AudioError("the FLAC file cannot be decoded (corrupt or truncated)")
        return decoded
    raise AudioError(f"expected a WAV or FLAC file, got {kind}")


def decode_at(data: bytes, rate: int, max_seconds: float = MAX_CALL_SECONDS) -> np.ndarray:
    """float32 mono samples at `rate` (a call's), or AudioError saying why not."""
    samples, source_rate = decode(data)
    if samples.size > max_seconds * source_rate:
        raise AudioError(f"the audio is {samples.size / source_rate:.0f} s long; at most "
                         f"{max_seconds:.0f} s can be played into a call")
    return resample(samples, source_rate, rate)


def _read_wav(data: bytes) -> tuple[np.ndarray, int]:
    fmt = _wav_format(data)
    if fmt == 3:  # IEEE float: `wave` refuses it
        return _read_float_wav(data)
    if fmt not in (1, 0xFFFE):
        raise AudioError(f"WAV format code {fmt} is not PCM (A-law is 6, mu-law 7): send 16-bit "
                         "PCM or FLAC")
    with wave.open(io.BytesIO(data), "rb") as wav:
        channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
        frames = wav.readframes(wav.getnframes())
    if rate <= 0 or channels <= 0:
        raise AudioError(f"WAV header says {rate} Hz and {channels} channel(s)")
    usable = len(frames) - len(frames) % (width * channels)
    raw = frames[:usable]
    if width == 1:
        samples = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128) / 128
    elif width == 2:
        samples = np.frombuffer(raw, "<i2").astype(np.float32) / 32768
    elif width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        value = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        value = np.where(value >= 1 << 23, value - (1 << 24), value)
        samples = value.astype(np.float32) / (1 << 23)
    elif width == 4:
        samples = np.frombuffer(raw, "<i4").astype(np.float32) / 2**31
    else:
        raise AudioError(f"{8 * width}-bit WAV samples are not supported: send 16-bit PCM")
    return _mono(samples, channels), rate


def _chunks(data: bytes):
    offset = 12
    while offset + 8 <= len(data):
        chunk_id, size = data[offset:offset + 4], struct.unpack_from("<I", data, offset + 4)[0]
        yield chunk_id, offset + 8, size
        offset += 8 + size + (size & 1)


def _wav_format(data: bytes) -> int:
    for chunk_id, start, size in _chunks(data):
        if chunk_id == b"fmt ":
            if size < 16:
                raise AudioError("the WAV file's fmt chunk is too short")
            return struct.unpack_from("<H", data, start)[0]
    raise AudioError("the WAV file has no fmt chunk")


def _read_float_wav(data: bytes) -> tuple[np.ndarray, int]:
    fmt = channels = rate = bits = None
    for chunk_id, start, size in _chunks(data):
        if chunk_id == b"fmt ":
            fmt, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", data, start)
        elif chunk_id == b"data" and fmt is not None:
            if bits not in (32, 64) or not channels or not rate:
                raise AudioError(f"float WAV with {bits}-bit samples: send 32-bit float or PCM")
            raw = data[start:start + size]
            raw = raw[:len(raw) - len(raw) % (bits // 8 * channels)]
            samples = np.frombuffer(raw, "<f4" if bits == 32 else "<f8").astype(np.float32)
            return _mono(np.clip(samples, -1, 1), channels), rate
    raise AudioError("the WAV file has no data chunk")


def _mono(samples: np.ndarray, channels: int) -> np.ndarray:
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1)
    return np.ascontiguousarray(samples, dtype=np.float32)


def _other_decoders(data: bytes) -> tuple[np.ndarray, int] | None:
    try:
        import soundfile
    except ImportError:
        soundfile = None
    if soundfile is not None:
        try:
            samples, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
            return np.ascontiguousarray(samples.mean(axis=1), np.float32), int(rate)
        except Exception:  # soundfile.LibsndfileError and friends: try PyAV
            pass
    return _pyav(data)


def _pyav(data: bytes) -> tuple[np.ndarray, int] | None:
    try:
        import av
    except ImportError:
        return None
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            stream = container.streams.audio[0]
            rate = stream.rate or stream.codec_context.sample_rate
            # Planar float at the file's own rate and layout; channels are averaged here (PyAV's
            # downmix weighs them by 0.707), the project's resampler does the rest.
            resampler = av.AudioResampler(format="fltp", rate=rate)
            parts = []
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    parts.append(out.to_ndarray().mean(axis=0))
            for out in resampler.resample(None):
                parts.append(out.to_ndarray().mean(axis=0))
    except Exception:  # av.error.* for corrupt data, IndexError for no audio stream
        return None
    if not parts or not rate:
        return None
    return np.concatenate(parts).astype(np.float32), int(rate)


def encode_wav(samples: np.ndarray, rate: int) -> bytes:
    """16-bit PCM mono WAV."""
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(to_pcm16(samples))
    return out.getvalue()

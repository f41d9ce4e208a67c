"""Decoding an uploaded audio file (WAV, FLAC, ... at any rate) into mono samples for a call.

PyAV (FFmpeg, already in the venv for faster-whisper) reads the container and converts to
mono float; the rate is changed by the project's own resampler, as everywhere else.
"""

from __future__ import annotations

import io

import numpy as np

from .resample import resample

MAX_SECONDS = 600  # longer audio is refused: a call is no place for an hour of music


class AudioFileError(ValueError):
    """The file cannot be played; the message says why (an API `detail`)."""


def decode_audio(data: bytes, target_rate: int) -> np.ndarray:
    """float32 mono samples at `target_rate`; AudioFileError if it does not decode."""
    import av  # imported here: only this upload path needs FFmpeg

    if not data:
        raise AudioFileError("the audio file is empty")
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.audio:
                raise AudioFileError("the file holds no audio stream")
            stream = container.streams.audio[0]
            # Sample format only (planar float): the channels are averaged here (FFmpeg's
            # downmix adds them at -3 dB, louder than the source), the rate is left to our
            # resampler.
            converter = av.AudioResampler(format="fltp")
            rate = stream.codec_context.sample_rate or stream.rate
            pieces, total = [], 0
            for frame in container.decode(stream):
                for planes in converter.resample(frame):
                    pieces.append(planes.to_ndarray().mean(axis=0))
                    total += planes.samples
                if rate and total > MAX_SECONDS * rate:
                    raise AudioFileError(f"the audio is longer than {MAX_SECONDS} s")
            for planes in converter.resample(None):
                pieces.append(planes.to_ndarray().mean(axis=0))
    except AudioFileError:
        raise
    except (av.FFmpegError, ValueError, OSError, EOFError) as exc:
        raise AudioFileError(f"the audio could not be decoded: {exc}; "
                             "send a WAV or FLAC file") from None
    samples = np.concatenate(pieces).astype(np.float32) if pieces else np.zeros(0, np.float32)
    if not rate or not len(samples):
        raise AudioFileError("the audio file holds no samples")
    return resample(samples, rate, target_rate)

"""Fixed benchmark sentences and a G.711 mu-law round trip, to hear them as a phone line would.

The sentences avoid numbers: Whisper writes "ten" as "10", which would count as an error and hide
the acoustic accuracy the benchmark is after.
"""

from __future__ import annotations

import numpy as np

from ..voice.resample import resample, to_float32, to_pcm16

PHONE_RATE = 8000

# Spoken by Piper (joe-medium) they last about 0.6 s to 15 s.
SENTENCES = (
    "Yes.",
    "What time is it?",
    "Turn off the lights in the living room.",
    "How long does it take to get to the airport by train?",
    "Tell the plumber that the kitchen tap is still leaking and that he can come in on Thursday.",
    "I would like to book an appointment with the dentist for next Tuesday afternoon, preferably"
    " after lunch, because I work in the morning.",
    "Hello, this is a message for the building manager. The heating in the top flat has not"
    " worked since Monday, and the radiators in the kitchen and the bedroom are cold. Could"
    " someone come round tomorrow morning to have a look at it?",
    "The parcel was left at the front door. Nobody answered when the courier rang the bell. Please"
    " call the depot to arrange another delivery on Friday. The reference is on the card in your"
    " letterbox. You can also collect it from the post office on the high street.",
)

# --- G.711 mu-law, as a phone line carries audio ---------------------------------------------

_BIAS, _CLIP = 0x84, 32635


def mulaw_encode(samples: np.ndarray) -> np.ndarray:
    """Float audio in [-1, 1] to G.711 mu-law bytes (uint8)."""
    x = np.frombuffer(to_pcm16(samples), "<i2").astype(np.int32)
    sign = (x < 0).astype(np.int32)
    magnitude = np.minimum(np.abs(x), _CLIP) + _BIAS
    exponent = np.floor(np.log2(magnitude)).astype(np.int32) - 7
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return (~((sign << 7) | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8)


def mulaw_decode(codes: np.ndarray) -> np.ndarray:
    """G.711 mu-law bytes to float32 audio."""
    b = ~codes.astype(np.int32) & 0xFF
    exponent, mantissa = (b >> 4) & 0x07, b & 0x0F
    magnitude = (((mantissa << 3) + _BIAS) << exponent) - _BIAS
    return to_float32(np.where(b & 0x80, -magnitude, magnitude).astype(np.int16))


def phone_line(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """`samples` as received over a G.711 call: 8 kHz, mu-law coded and decoded (float32)."""
    return mulaw_decode(mulaw_encode(resample(samples, sample_rate, PHONE_RATE)))

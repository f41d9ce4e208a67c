"""Our own voice coming back from the far end, taken out before the VAD listens.

A speakerphone, or a line's 2-to-4-wire hybrid, sends part of what we play back to us a little
later. Heard during playback it would count as the caller talking (a barge-in against
ourselves). Each 20 ms block that arrives comes with what we played just before it (the
bridge keeps 1 s, so echo delays up to 0.8 s are found: two jitter buffers and the far end
came to 0.22-0.24 s on loopback, more on a loaded machine). The echo path is found by
cross-correlating the last few blocks heard with that reference, and the delayed, scaled
reference is subtracted (about 37 dB less echo through G.711 in the tests); a block that was
nearly all echo is silenced. The caller's own speech does not correlate with ours, so it stays
and still interrupts.

One delay and one gain: right for a hybrid or a handset's acoustic leak; a reverberant room
leaves a residue, which the barge-in's need for sustained speech absorbs.
"""

from __future__ import annotations

from collections import deque

import numpy as np


ANALYSIS_BLOCKS = 10  # blocks heard (200 ms) cross-correlated to find the delay
MIN_CORRELATION = 0.65  # below this, what we hear is not (mostly) our echo; same-voice speech
# that merely resembles ours reached 0.5
ECHO_ONLY = 0.06  # a block whose energy cancelling took below this share (-12 dB) was echo
ECHO_DOMINANT = 0.5  # below this share, echo was most of the block and is worth taking out
QUIET = 1e-7  # mean square below which a block counts as silence (-70 dBFS)


LOWPASS_TAPS = 63


def lowpass(cutoff: float) -> np.ndarray:
    """A windowed-sinc low-pass FIR; `cutoff` as a fraction of the sample rate."""
    n = np.arange(LOWPASS_TAPS) - (LOWPASS_TAPS - 1) / 2
    taps = 2 * cutoff * np.sinc(2 * cutoff * n) * np.hamming(LOWPASS_TAPS)
    return (taps / taps.sum()).astype(np.float32)


class EchoCanceller:
    def __init__(self, sample_rate: int, line_rate: int = 8000) -> None:
        self.sample_rate = sample_rate
        self.line_rate = line_rate  # the codec's band: echo holds nothing above half of it
        self._lowpass = lowpass(0.45 * line_rate / sample_rate) if line_rate < sample_rate \
            else None
        self._heard: deque[np.ndarray] = deque(maxlen=ANALYSIS_BLOCKS)
        self.delay: int | None = None  # samples, once found
        self.suppressed = 0  # blocks in which echo was taken out (for logs and tests)

    def forget(self) -> None:
        """Blocks were dropped unheard: the next ones do not follow on from those before."""
        self._heard.clear()

    def clean(self, block: np.ndarray, played: np.ndarray | None) -> np.ndarray:
        """`block` as heard, less our echo. `played` ends where `block` ends."""
        self._heard.append(block)
        if played is None or float(np.mean(played * played)) < QUIET:
            return block
        # Both in the narrowest band a call may have (G.711): a G.722 call's echo is wider,
        # but what is below 4 kHz decides whether a block is echo.
        reference = self._band_limited(played)
        recent = self._band_limited(np.concatenate(self._heard))
        found = self._find_delay(recent, reference)
        if found is not None:
            self.delay = found
        if self.delay is None:
            return block
        size = len(block)
        end = len(reference) - self.delay
        if end - size < 0:
            return block
        echo = reference[end - size:end]
        narrow = recent[-size:]
        power = float(np.dot(echo, echo))
        if power < QUIET * size:
            return block
        gain = float(np.dot(narrow, echo)) / power
        if gain <= 0:
            return block
        residual = narrow - gain * echo
        left = float(np.dot(residual, residual)) / max(float(np.dot(narrow, narrow)), 1e-12)
        if left < ECHO_ONLY:
            # Nearly all of it was our echo. The VAD would still hear speech in the
            # remainder (it goes by spectrum more than level), so none of it is passed on.
            self.suppressed += 1
            return np.zeros_like(block)
        if left < ECHO_DOMINANT:  # the caller over our echo: keep the caller
            return residual.astype(np.float32)
        return block  # little of it is echo: leave the caller's voice untouched

    def _band_limited(self, audio: np.ndarray) -> np.ndarray:
        """`audio` as a G.711 line passes it: nothing above 4 kHz. The filter is causal, so
        the newest samples, the ones being judged, are filtered as fully as the rest; it
        delays both sides alike, which leaves the echo's delay as it was."""
        if self._lowpass is None:
            return audio
        return np.convolve(audio, self._lowpass)[: len(audio)].astype(np.float32)

    @staticmethod
    def _find_delay(recent: np.ndarray, reference: np.ndarray) -> int | None:
        """The delay at which `recent` best matches the reference, if the match is good."""
        n = len(recent)
        if len(reference) <= n or float(np.dot(recent, recent)) < QUIET * n:
            return None
        size = 1 << (len(reference) + n - 1).bit_length()
        product = np.fft.irfft(np.fft.rfft(reference, size) * np.conj(np.fft.rfft(recent, size)),
                               size)[: len(reference) - n + 1]
        energy = np.concatenate([[0.0], np.cumsum(reference.astype(np.float64) ** 2)])
        window = energy[n:] - energy[:-n]
        norm = np.sqrt(np.maximum(window, 1e-12) * float(np.dot(recent, recent)))
        score = product / norm
        offset = int(np.argmax(score))  # where `recent` starts in the reference
        if score[offset] < MIN_CORRELATION:
            return None
        return len(reference) - n - offset

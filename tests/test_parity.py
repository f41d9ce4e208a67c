"""The call pipeline's parity with offline ASR, and the memory rules: the pure parts
(the live benchmark itself runs real calls: `sipassist bench asr --live`)."""

from __future__ import annotations

import numpy as np
import pytest

from sipassist.bench.asr_live import align, glitches, pick
from sipassist.bench.answers import load_set
from sipassist.bench.memory import pss_breakdown, pss_mb
from sipassist.config import AudioSettings, SipSettings
from sipassist.model_choice import LARGE, LARGE_MIN_RAM_MB, SMALL, choose_llm, total_ram_mb
from sipassist.telephony.baresip import config_text


def _speech(seconds: float = 1.0, rate: int = 16000, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.2 * rng.standard_normal(int(seconds * rate))).astype(np.float32)


# -- the model by the box's memory ------------------------------------------------------------

@pytest.mark.parametrize("ram_mb, installed, expected", [
    (2048, True, SMALL),          # a 2 GB board: never the large model
    (LARGE_MIN_RAM_MB - 1, True, SMALL),
    (LARGE_MIN_RAM_MB, True, LARGE),
    (8192, True, LARGE),
    (8192, False, SMALL),         # enough memory, but CI's install has no llm-large
    (None, True, SMALL),          # memory unknown
])
def test_the_model_follows_memory_and_what_is_installed(ram_mb, installed, expected):
    choice = choose_llm(ram_mb, installed)
    assert choice.model == expected
    assert choice.reason


def test_the_reason_says_how_to_get_the_large_model():
    assert "llm-large" in choose_llm(8192, False).reason
    assert "4 GB" in choose_llm(2048, True).reason


def test_total_ram_is_read_from_meminfo(tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:        3951232 kB\nMemFree:  100 kB\n")
    assert total_ram_mb(meminfo) == 3858
    assert total_ram_mb(tmp_path / "missing") is None


# -- baresip: no resampling where it can be avoided ---------------------------------------------

def _modules(rate: int) -> list[str]:
    text = config_text(SipSettings(), AudioSettings(sample_rate=rate, period=rate // 50))
    return [line.split()[1] for line in text.splitlines() if line.startswith("module g7")]


def test_wideband_first_at_16_khz_and_only_g711_at_8_khz():
    assert _modules(16000) == ["g722.so", "g711.so"]
    assert _modules(8000) == ["g711.so"]


# -- the live benchmark's measures --------------------------------------------------------------

def test_align_finds_where_the_captured_audio_starts():
    line = _speech(2.0)
    assert align(line[4000:20000], line) == 4000
    padded = np.concatenate([np.zeros(800, np.float32), line[:16000]])
    assert align(padded, line) == -800


def test_glitches_counts_lost_blocks_and_not_a_clean_copy():
    line = _speech(2.0)
    assert glitches(line[1000:30000], line) == 0
    lost = np.concatenate([line[:10000], line[10320:30000]])  # one 20 ms block dropped
    assert glitches(lost, line) >= 1
    garbled = line[:30000].copy()
    garbled[16000:16960] = _speech(0.06, seed=7)  # three blocks of something else
    assert glitches(garbled, line) >= 3


def test_pick_spreads_over_the_set_without_goodbyes():
    chosen = pick(load_set(), 12)
    assert len(chosen) == 12
    assert all(u.category != "goodbye" for u in chosen)
    assert len({u.category for u in chosen}) >= 5


def test_pss_is_measured_and_broken_down():
    total = pss_mb()
    parts = pss_breakdown()
    assert total and total > 1
    assert parts and abs(sum(parts.values()) - total) < 0.2 * total + 5


# -- memory -------------------------------------------------------------------------------------

def test_the_tts_cache_is_bounded_in_bytes(synthesizer):
    from sipassist.voice.tts import Synthesizer

    small = Synthesizer(synthesizer.voice, 16000, cache_size=64, cache_bytes=200_000)
    long = "This sentence is long enough to take a few seconds to say on the phone line."
    first = small.synthesize(long)
    assert first.nbytes > 100_000  # so two of them do not fit
    small.synthesize(long + " Again.")
    assert small.synthesize(long) is not first  # evicted: synthesised afresh
    assert small._cached_bytes <= 200_000
    tiny = small.synthesize("Hi.")
    assert small.synthesize("Hi.") is tiny  # a short one stays


def test_contexts_of_one_model_share_its_weights(models_dir):
    from sipassist.models import resolve_llm_model
    from sipassist.voice.llama_models import load_llama

    model = resolve_llm_model("qwen-0.5b", models_dir)
    first = load_llama(model.path, n_ctx=256, n_threads=1, verbose=False)
    second = load_llama(model.path, n_ctx=256, n_threads=1, verbose=False)
    assert second._model.model == first._model.model  # one llama_model, two contexts
    assert second._ctx.ctx != first._ctx.ctx
    # Both still work, each with its own state.
    assert first.tokenize(b"hello") == second.tokenize(b"hello")
    out = second.create_completion("1, 2, 3,", max_tokens=3, temperature=0)
    assert out["choices"][0]["text"].strip()
    del first  # the borrower keeps the model alive
    assert second.create_completion("a, b, c,", max_tokens=2, temperature=0)["choices"]


def test_the_router_believes_a_weather_choice_only_with_a_weather_word():
    from sipassist.voice.routing import PLAUSIBLE

    weather = PLAUSIBLE["WEATHER"]
    for text in ("Should I wear a jacket?", "Is it going to snow tonight?", "Do I need an "
                 "umbrella?", "How many degrees is it out there?", "Is it sunny?"):
        assert weather(text), text
    for text in ("Why is the sky blue?", "What is the tallest mountain in the world?",
                 "Who invented the telephone?"):
        assert not weather(text), text

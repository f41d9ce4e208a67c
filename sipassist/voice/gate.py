"""Calls come first: who may use a model (ASR, LLM, TTS) now, live calls or API requests.

The box has a few cores and one copy of each model. A live call must never wait for API work
beyond the one slice already running, so:

- A call takes a model as soon as its current user is done: it never queues behind API
  requests (`call(model)`). Calls at the same time take turns on each model, one at a time,
  in the order they asked (the call that waited longest goes first): a turn waits, never
  fails. A thread already using the model goes on (no deadlock on a nested use).
- An API request takes a model only while no call needs *any* model: none holds or waits for
  one, no caller is speaking (their turn is coming), and the last call use ended more than
  `call_linger_seconds` ago (the gaps between a turn's ASR, LLM and TTS). One model, one user.
- One API request uses a model at a time. Its work runs in slices (a sentence of TTS, a
  segment of ASR, a token of the LLM), each started only while no call needs a model, so a
  call waits at most for one slice.
- At most `api_queue` API requests wait for a model; more, or one that waited
  `api_wait_seconds` for its turn, get `ModelBusy` (503 with Retry-After); a request under
  way waits up to LATER_SLICE_FACTOR times longer between slices.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

MODELS = ("asr", "llm", "tts")
POLL_SECONDS = 0.02  # how often a waiting API slice looks again at callers' speech
LATER_SLICE_FACTOR = 6  # a request already under way waits this many times longer


class ModelBusy(Exception):
    """An API request could not get the model in time: a call needs it."""

    def __init__(self, model: str, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.model = model
        self.detail = detail
        self.retry_after = retry_after


@dataclass(frozen=True)
class GateSettings:
    api_wait_seconds: float = 10.0
    api_queue: int = 4
    call_linger_seconds: float = 0.5


class ModelGates:
    """One gate per model, sharing what calls are doing."""

    def __init__(self, settings: GateSettings = GateSettings(),
                 caller_speaking: Callable[[], bool] = lambda: False,
                 on_refused: Callable[[str], None] | None = None) -> None:
        self.settings = settings
        self.caller_speaking = caller_speaking  # any live call's caller is talking now
        self.on_refused = on_refused
        self._cond = threading.Condition()
        self._api_request: dict[str, bool] = {m: False for m in MODELS}  # one API request each
        self._api_holding: dict[str, bool] = {m: False for m in MODELS}  # in one of its slices
        self._calls_using = 0  # call uses in progress or waiting, all models
        self._api_waiting: dict[str, int] = {m: 0 for m in MODELS}
        self._last_call_use = float("-inf")
        self._call_turns: dict[str, deque[object]] = {m: deque() for m in MODELS}  # FIFO
        self._call_holder: dict[str, int | None] = {m: None for m in MODELS}  # thread using it

    # -- calls ------------------------------------------------------------------------------

    @contextmanager
    def call(self, model: str) -> Iterator[None]:
        """A live call's use: waits for the API slice now running, if any, and for the calls
        that asked for this model before it (first come, first served)."""
        me = threading.get_ident()
        with self._cond:
            self._calls_using += 1
            nested = self._call_holder[model] == me
            if not nested:
                turn = object()
                turns = self._call_turns[model]
                turns.append(turn)
                self._cond.wait_for(lambda: turns[0] is turn and self._call_holder[model] is None
                                    and not self._api_holding[model])
                turns.popleft()
                self._call_holder[model] = me
        try:
            yield
        finally:
            with self._cond:
                if not nested:
                    self._call_holder[model] = None
                self._calls_using -= 1
                self._last_call_use = time.monotonic()
                self._cond.notify_all()

    def calls_first(self, model: str, func: Callable[..., T]) -> Callable[..., T]:
        """`func` wrapped to run as a call's use of `model`."""
        def gated(*args, **kwargs):
            with self.call(model):
                return func(*args, **kwargs)
        return gated

    def call_stream(self, model: str, items: Iterable[T]) -> Iterator[T]:
        """A call's use held across a generator (the LLM's reply, spoken as it comes)."""
        with self.call(model):
            yield from items

    # -- API requests -----------------------------------------------------------------------

    def _calls_need_models(self) -> bool:
        return (self._calls_using > 0
                or time.monotonic() - self._last_call_use < self.settings.call_linger_seconds
                or self.caller_speaking())

    def _wait(self, ready: Callable[[], bool], model: str, seconds: float) -> None:
        """Wait (lock held) until ready() and no call needs a model; ModelBusy after `seconds`."""
        deadline = time.monotonic() + seconds
        while not ready() or self._calls_need_models():
            left = deadline - time.monotonic()
            if left <= 0:
                self._refuse(model, f"the {model.upper()} model is busy with live calls and "
                                    f"other API requests (waited {seconds:.0f} s); calls come "
                                    "first")
            self._cond.wait(min(left, POLL_SECONDS))

    @contextmanager
    def api(self, model: str) -> Iterator[None]:
        """One API request's turn on `model` (one at a time, FIFO enough); raises ModelBusy.

        Inside it, do the work in `api_slices` / `api_slice`, which yield to calls.
        """
        with self._cond:
            if self._api_waiting[model] >= self.settings.api_queue:
                self._refuse(model, f"{self._api_waiting[model]} API requests already wait "
                                    f"for the {model.upper()} model")
            self._api_waiting[model] += 1
            try:
                self._wait(lambda: not self._api_request[model], model,
                           self.settings.api_wait_seconds)
            finally:
                self._api_waiting[model] -= 1
            self._api_request[model] = True
        try:
            yield
        finally:
            with self._cond:
                self._api_request[model] = False
                self._cond.notify_all()

    @contextmanager
    def api_slice(self, model: str) -> Iterator[None]:
        """One slice of the request's work: runs while no call needs a model."""
        with self._cond:
            self._wait(lambda: True, model, self.settings.api_wait_seconds * LATER_SLICE_FACTOR)
            self._api_holding[model] = True
        try:
            yield
        finally:
            with self._cond:
                self._api_holding[model] = False
                self._cond.notify_all()

    def api_slices(self, model: str, items: Iterable[T]) -> Iterator[T]:
        """Items of a lazy iterator, each made in its own slice."""
        iterator = iter(items)
        try:
            while True:
                with self.api_slice(model):
                    item = next(iterator, _END)
                if item is _END:
                    return
                yield item
        finally:
            close = getattr(iterator, "close", None)
            if close:  # a request cut short: end the model's generator (and its lock) now
                close()

    def _refuse(self, model: str, detail: str) -> None:
        if self.on_refused:
            self.on_refused(model)
        retry = max(1, round(self.settings.api_wait_seconds / 2))
        raise ModelBusy(model, detail, retry)

    def waiting(self) -> dict[str, int]:
        with self._cond:
            return dict(self._api_waiting)


_END = object()

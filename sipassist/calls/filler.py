"""A short "One moment." when an answer is slow to come, so the caller knows we heard them.

The answer's sentences are worked out on a thread of their own (tools, the language model)
while the caller's thread waits for the first; if it is not there after `after` seconds, the
filler is spoken first. Fast answers (the tools, a warm small model) never hear it.

The thread works out a sentence only when the next one is asked for, as a plain generator
would: the model then never competes with Piper for the two cores while the sentence before
is being synthesised.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator

_DONE = object()
STOP_WAIT = 5.0  # seconds to let a stopped answer finish the step it is in


class WithFiller:
    def __init__(self, sentences: Iterable[str], after: float, filler: str) -> None:
        self.after = after
        self.filler = filler
        self.filled = False
        self._items: queue.Queue = queue.Queue()
        self._wanted = threading.Semaphore(0)  # one release per sentence asked for
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._work, args=(iter(sentences),),
                                        name="answer", daemon=True)
        self._worker.start()

    def _work(self, sentences: Iterator[str]) -> None:
        try:
            while True:
                self._wanted.acquire()
                if self._stop.is_set():
                    break
                sentence = next(sentences, _DONE)
                if sentence is _DONE:
                    break
                self._items.put(sentence)
        except BaseException as exc:  # handed to the caller's thread, raised there
            self._items.put(exc)
        finally:
            close = getattr(sentences, "close", None)
            if close:
                close()  # a generator's own cleanup (the model's history) runs now
            self._items.put(_DONE)

    def __iter__(self) -> Iterator[str]:
        self._wanted.release()
        try:
            item = self._items.get(timeout=self.after)
        except queue.Empty:
            self.filled = True
            yield self.filler
            item = self._items.get()
        while item is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item
            self._wanted.release()
            item = self._items.get()

    def close(self) -> None:
        """Stop after the sentence being worked out, and wait for that (the caller
        interrupted, or hung up): the next turn must not overlap this one."""
        self._stop.set()
        self._wanted.release()
        self._worker.join(STOP_WAIT)

"""One llama.cpp model in memory, however many contexts use it.

The chat model, the tool router and the API's completer each want a context of their own
(each keeps its own prompt's KV state), but they run the same GGUF file. llama-cpp-python's
`Llama` loads the model for every instance, and llama.cpp repacks quantised weights for the
CPU into anonymous memory, so the mmap of the file does not share them: the router's second
`Llama` cost another 188 MB of PSS for qwen-0.5b (`sipassist bench memory`). llama.cpp itself
lets many contexts use one model, read-only, at the same time; so the second and later
`Llama` of a file get the first one's model instead of loading it again.
"""

from __future__ import annotations

import threading
import weakref
from pathlib import Path
from typing import Any

_lock = threading.Lock()
_owners: dict[str, weakref.ref] = {}  # resolved path -> the Llama that loaded the model


class _Borrowed:
    """The owner's model, lent to another Llama: everything but close() goes to it, and the
    owner is kept alive (it frees the model) as long as a borrower is."""

    def __init__(self, owner: Any) -> None:
        self._owner = owner
        self._model = owner._model

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def close(self) -> None:
        self._owner = None


def load_llama(model_path: Path | str, **params: Any):
    """A `Llama` for `model_path` with `params` (n_ctx, n_threads, ...), sharing the model
    with any earlier one still alive."""
    import llama_cpp._internals as internals
    from llama_cpp import Llama

    key = str(Path(model_path).resolve())
    with _lock:
        reference = _owners.get(key)
        owner = reference() if reference is not None else None
        if owner is None or getattr(owner, "_model", None) is None:
            llm = Llama(model_path=str(model_path), **params)
            _owners[key] = weakref.ref(llm)
            return llm
        loader = internals.LlamaModel
        internals.LlamaModel = lambda **_kwargs: _Borrowed(owner)
        try:
            return Llama(model_path=str(model_path), **params)
        finally:
            internals.LlamaModel = loader

"""Sentence embeddings on the box: all-MiniLM-L6-v2 (int8 ONNX) through onnxruntime.

Texts become 384-dimensional unit vectors (mean of the token states over the attention mask, then
L2-normalised), so the cosine similarity of two texts is the dot product of their vectors. The
model loads on first use (restored tables need no model until searched): its optimised
onnxruntime session takes ~160 MB resident here, which a box without a knowledge base never pays.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

import numpy as np

from ..models import EMBEDDING_MODEL, ResolvedEmbedding

log = logging.getLogger(__name__)

DIMENSION = 384
MAX_TOKENS = 256  # the model's limit; a longer text is embedded on its first 256 tokens
BATCH_SIZE = 32


class Embedder:
    """Thread-safe text embedding; `resolve` finds and verifies the model files on first use."""

    name = EMBEDDING_MODEL  # stored with the vectors: those of another model do not compare

    def __init__(self, resolve: Callable[[], ResolvedEmbedding], threads: int = 1) -> None:
        self._resolve = resolve
        self._threads = threads
        self._lock = threading.Lock()
        self._session = None
        self._tokenizer = None
        self.model: ResolvedEmbedding | None = None

    def load(self) -> None:
        """Load the model now (raises models.ModelNotFound if it is missing or altered)."""
        with self._lock:
            if self._session is not None:
                return
            import onnxruntime
            from tokenizers import Tokenizer

            started = time.perf_counter()
            model = self._resolve()
            tokenizer = Tokenizer.from_file(str(model.tokenizer))
            # The file pads every text to 128 tokens; pad a batch to its longest text instead.
            tokenizer.enable_truncation(max_length=MAX_TOKENS)
            tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = self._threads
            options.inter_op_num_threads = 1
            # The arena keeps the largest batch's buffers for good: ~100 MB more resident,
            # no faster here (measured).
            options.enable_cpu_mem_arena = False
            options.log_severity_level = 3  # warnings about unused initialisers are noise
            session = onnxruntime.InferenceSession(str(model.path), sess_options=options,
                                                   providers=["CPUExecutionProvider"])
            self._inputs = {item.name for item in session.get_inputs()}
            self._tokenizer, self._session, self.model = tokenizer, session, model
            log.info("embedding model %s loaded in %.2f s (%s)", model.name,
                     time.perf_counter() - started, model.source)

    def embed(self, texts: Sequence[str], batch_size: int = BATCH_SIZE) -> np.ndarray:
        """Unit vectors, float32, one row per text, in the order given."""
        self.load()
        out = np.zeros((len(texts), DIMENSION), dtype=np.float32)
        # Texts of similar length batched together: little padding, much less work.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), batch_size):
            chosen = order[start:start + batch_size]
            out[chosen] = self._embed_batch([texts[i] for i in chosen])
        return out

    def embed_one(self, text: str) -> np.ndarray:
        return self.embed([text])[0]

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        states = self._session.run(None, feeds)[0]  # (batch, tokens, 384): last_hidden_state
        weights = mask[:, :, None].astype(np.float32)
        pooled = (states * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1.0)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return pooled / np.maximum(norms, 1e-12)

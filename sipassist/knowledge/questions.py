"""A question's vector with its "question-ness" taken out, so it matches rows by topic.

Short spoken questions ("Do you take my health plan?") embed close to any row that reads as
an answer to a question in general: rows such as "Please bring your insurance card..." drew
many unrelated questions. Taking out part of the direction all such questions share (the mean
of generic questions that ask nothing in particular) and normalising again ranked the pairs'
rows better (`sipassist bench knowledge`, 56 pairs: recall@3 0.893 -> 0.929 on the pairs alone,
0.857 -> 0.893 among 1,000 rows; weights 0.2 and 0.3 did the same, 0.5 worse). Scores come out
about 0.01 lower than the plain cosine (the weight is kept small for that).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import numpy as np

# Questions about nothing in particular: what every question has in common.
GENERIC = (
    "Can I ask you something?", "What do I need to do?", "Is it possible?",
    "How does that work?", "Do you have that?", "Can you help me with something?",
    "What about that?", "Where is it?",
)
WEIGHT = 0.2


class QuestionShaper:
    def __init__(self, embed: Callable[[Sequence[str]], np.ndarray]) -> None:
        self._embed = embed
        self._lock = threading.Lock()
        self._generic: np.ndarray | None = None

    def shape(self, vector: np.ndarray) -> np.ndarray:
        """`vector` (a unit vector of a question) less WEIGHT of the generic direction."""
        with self._lock:
            if self._generic is None:  # embedded once, on the first search
                self._generic = self._embed(list(GENERIC)).mean(axis=0)
        shaped = vector - WEIGHT * self._generic
        return (shaped / np.linalg.norm(shaped)).astype(np.float32)

"""Answers grounded in an agent's knowledge tables: the rows that answer a question, and the
words to say from them.

The spoken answer is the row's own sentence(s) closest in meaning to the question: rows are
written to be read out ("We close at five on Fridays."), and a right answer beats a fluent one.
Measured with the 0.5B model and the row in a compact prompt ("Answer in one short sentence
using only this fact: ...") on 20 of the bench's question/row pairs: it turned "cancelled less
than 24 hours ahead are charged 30 dollars" into "No, there is no charge", answered two
questions about hours with "Sorry, I can't check that" (the guard against made-up times), and
dropped the numbers of others; 1.2 s median before the first word, where the row is at once.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..knowledge import Hit, KnowledgeBase, KnowledgeError
from ..models import ModelNotFound
from ..voice.choice import words

log = logging.getLogger(__name__)

DONT_KNOW = "Sorry, I don't know that."
MAX_SPOKEN_CHARS = 240  # about 15 seconds read out: longer rows give their best sentences
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_QUESTION_START = re.compile(
    r"^(what|when|where|who|whom|whose|which|why|how|is|are|am|was|were|do|does|did|can|could|"
    r"will|would|should|shall|may|might|have|has|had|tell me|i want to know|i'd like to know|"
    r"i would like to know|i need to know|any idea)\b")


@dataclass(frozen=True)
class Grounding:
    hits: tuple[Hit, ...]  # best first, each above the threshold
    spoken: str  # what to say: the best row's sentences that answer the question


def is_question(text: str) -> bool:
    """Whether an utterance asks something (then "I don't know" is a fair answer to it), or is
    small talk ("thanks", "good morning") the model may answer."""
    said = " ".join(words(text))
    return text.rstrip().endswith("?") or bool(_QUESTION_START.search(said))


def sentences_of(content: str) -> list[str]:
    """A row's sentences to read out: no Markdown headings, no FAQ questions."""
    lines = [line.strip() for line in content.splitlines()]
    text = " ".join(line.lstrip("#").strip() if not line.startswith("#") else ""
                    for line in lines if line)
    text = re.sub(r"^\s*(q|question)\s*:.*?\?\s*(a|answer)\s*:\s*", "", text, flags=re.I)
    found = [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]
    return [s for s in found if not s.endswith("?")] or found


class Grounder:
    def __init__(self, knowledge: KnowledgeBase, min_score: float) -> None:
        self.knowledge = knowledge
        self.min_score = min_score

    def ground(self, tables: Sequence[str], question: str) -> Grounding | None:
        """The rows of `tables` that answer `question`, or None (nothing close enough, or
        the embedding model is missing: logged)."""
        try:
            hits = self.knowledge.search_tables(tables, question, limit=3,
                                                min_score=self.min_score, skip_missing=True)
        except (KnowledgeError, ModelNotFound, OSError) as exc:
            log.warning("knowledge search failed for %r: %s", question, exc)
            return None
        if not hits:
            return None
        return Grounding(tuple(hits), self.spoken(hits[0].content, question))

    def spoken(self, content: str, question: str) -> str:
        """The row whole when it is short; else its sentence closest to the question, with the
        next one while they fit (a fact is often said over two sentences)."""
        found = sentences_of(content)
        whole = " ".join(found)
        if len(whole) <= MAX_SPOKEN_CHARS or len(found) == 1:
            return whole[:MAX_SPOKEN_CHARS * 2]
        vectors = self.knowledge.embedder.embed([question, *found])
        scores = np.einsum("ij,j->i", vectors[1:], vectors[0])
        best = int(np.argmax(scores))
        chosen = [found[best]]
        if best + 1 < len(found) and len(chosen[0]) + len(found[best + 1]) < MAX_SPOKEN_CHARS:
            chosen.append(found[best + 1])
        return " ".join(chosen)

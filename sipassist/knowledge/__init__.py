"""A knowledge base on the box: tables of text rows, searched by meaning (sentence embeddings).

Use `open_knowledge_base(settings)`, then `search(table, query, limit, min_score)` (or
`search_tables` over several) for rows best first; the API in `api/knowledge.py` is a thin layer
over the same methods.
"""

from __future__ import annotations

from ..config import Settings
from ..models import resolve_embedding_model
from .base import Hit, KnowledgeBase, NewRow, check_name
from .embedding import Embedder
from .errors import AlreadyExists, InvalidInput, KnowledgeError, LimitExceeded, NotFound
from .storage import Row


def open_knowledge_base(settings: Settings, embedder: Embedder | None = None) -> KnowledgeBase:
    """The knowledge base in the state directory; the model loads when first needed."""
    if embedder is None:
        embedder = Embedder(lambda: resolve_embedding_model(settings.paths.models),
                            settings.knowledge.threads)
    return KnowledgeBase(settings.knowledge_dir, embedder, settings.knowledge)


__all__ = ["AlreadyExists", "Embedder", "Hit", "InvalidInput", "KnowledgeBase", "KnowledgeError",
           "LimitExceeded", "NewRow", "NotFound", "Row", "check_name", "open_knowledge_base"]

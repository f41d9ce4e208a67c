"""What can go wrong in the knowledge base, each worded for the person who sent the request.

The API answers InvalidInput with 400, NotFound 404, AlreadyExists 409 and LimitExceeded 413.
"""

from __future__ import annotations


class KnowledgeError(Exception):
    """A refused request; the message says what to fix."""


class InvalidInput(KnowledgeError):
    pass


class NotFound(KnowledgeError):
    pass


class AlreadyExists(KnowledgeError):
    pass


class LimitExceeded(KnowledgeError):
    """A table, row or request would pass a limit of the [knowledge] settings."""

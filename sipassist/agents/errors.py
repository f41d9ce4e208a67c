"""What can go wrong with agents, each worded for the person who sent the request.

The API answers InvalidAgent with 400, AgentNotFound 404, AgentConflict 409 and TooManyAgents 413
(as the knowledge base answers its limits).
"""

from __future__ import annotations


class AgentError(Exception):
    """A refused request; the message says what to fix."""


class InvalidAgent(AgentError):
    pass


class AgentNotFound(AgentError):
    pass


class AgentConflict(AgentError):
    """Two agents claim one line, or the default agent would go."""


class TooManyAgents(AgentError):
    pass

"""Agents: personas that answer calls and texts (model.py), kept in the state directory
(store.py), answering each turn through one engine (engine.py: rules, knowledge, tools, LLM).

For a conversation: `engine.answer(agent, history, text, TurnContext(...))` gives an `Answer`;
iterate it for the sentences, then `answer.report` says what was done (tool, knowledge rows)
and `answer.report.tool_message()` is the tool's part as a `role: "tool"` history message.
"""

from .engine import AgentEngine, Answer, Report, TurnContext
from .errors import AgentConflict, AgentError, AgentNotFound, InvalidAgent, TooManyAgents
from .model import DEFAULT_ID, Agent, Persona, default_agent
from .store import AgentStore

__all__ = ["DEFAULT_ID", "Agent", "AgentConflict", "AgentEngine", "AgentError", "AgentNotFound",
           "AgentStore", "Answer", "InvalidAgent", "Persona", "Report", "TooManyAgents",
           "TurnContext", "default_agent"]

"""The agents: kept in `<state_dir>/agents.json` (tinydb, atomic writes), looked up by id and by
the line a call came in on.

The default agent is made from [conversation] at each start until someone changes it; from then
on it is stored like the others. Every change is checked whole (fields, names, line clashes,
the count) before it is written, so a refused request leaves nothing behind.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..calls.model import iso, utc_now
from ..config import Settings
from ..faults import StorageFaults
from ..store import Store
from .checks import check_agent, check_id
from .errors import AgentConflict, AgentNotFound, InvalidAgent, TooManyAgents
from .model import DEFAULT_ID, Agent, Persona, default_agent, line_key

log = logging.getLogger(__name__)

TABLE = "agents"
KEY = "id"

# Fields a request may set, and the ones PUT resets when left out.
FIELDS = ("name", "instructions", "persona", "tools", "knowledge", "model", "lines")


class AgentStore:
    """Agents by id; `for_line(user)` is the agent that answers a call to that user."""

    def __init__(self, path: Path, settings: Settings, tool_names: Callable[[], list[str]],
                 table_exists: Callable[[str], bool] = lambda name: False,
                 faults: StorageFaults | None = None) -> None:
        self.settings = settings
        self.tool_names = tool_names
        self.table_exists = table_exists
        self.max_agents = settings.agents.max_agents
        self._store = Store(path, faults)
        self._lock = threading.Lock()
        self._agents: dict[str, Agent] = {}
        # Called with the set of lines after each change (the switchboard's accounts follow).
        self.on_lines_changed: Callable[[set[str]], None] | None = None
        for doc in self._store.all(TABLE):
            try:
                agent = Agent.from_json(doc)
            except (KeyError, TypeError) as exc:
                log.error("agents: a stored agent is damaged and left out (%s): %r", exc, doc)
                continue
            self._agents[agent.id] = agent
        if DEFAULT_ID not in self._agents:
            self._agents[DEFAULT_ID] = default_agent(settings, tool_names())
        log.info("agents: %s", ", ".join(sorted(self._agents)))

    def close(self) -> None:
        self._store.close()

    # -- reading -----------------------------------------------------------------------------

    def list(self) -> list[Agent]:
        """The default agent first, then by creation."""
        agents = list(self._agents.values())
        return sorted(agents, key=lambda a: (not a.is_default, a.created_at, a.id))

    def get(self, agent_id: str) -> Agent:
        agent = self._agents.get(agent_id)
        if agent is None:
            raise AgentNotFound(f"no agent {agent_id!r}: GET /v1/agents lists them")
        return agent

    @property
    def default(self) -> Agent:
        return self._agents[DEFAULT_ID]

    def for_line(self, user: str | None) -> Agent:
        """The agent whose lines include `user` (a SIP user or extension), else the default."""
        if user:
            key = line_key(user)
            for agent in self._agents.values():
                if key in agent.lines:
                    return agent
        return self.default

    def lines(self) -> set[str]:
        return {line for agent in self._agents.values() for line in agent.lines}

    # -- changing ----------------------------------------------------------------------------

    def create(self, fields: dict[str, Any]) -> Agent:
        """A new agent from request fields; the unset ones take the default agent's
        instructions, persona and tools."""
        agent_id = fields.get("id")
        agent_id = check_id(agent_id) if agent_id is not None else f"agent_{secrets.token_hex(6)}"
        with self._lock:
            if agent_id in self._agents:
                raise AgentConflict(f"agent {agent_id!r} already exists: PATCH or PUT it, or "
                                    "pick another id")
            if len(self._agents) >= self.max_agents:
                raise TooManyAgents(f"there are already {len(self._agents)} agents, the limit "
                                    "(agents.max_agents): delete one first")
            now = iso(utc_now())
            agent = self._filled(Agent(id=agent_id, name="", instructions="",
                                       created_at=now, updated_at=now), fields, reset=True)
            return self._save(agent, created=True)

    def replace(self, agent_id: str, fields: dict[str, Any]) -> Agent:
        """PUT: every field as given, the ones left out back to their defaults."""
        with self._lock:
            agent = self._filled(self.get(agent_id), fields, reset=True)
            return self._save(agent)

    def update(self, agent_id: str, fields: dict[str, Any]) -> Agent:
        """PATCH: only the fields given change."""
        with self._lock:
            agent = self._filled(self.get(agent_id), fields, reset=False)
            return self._save(agent)

    def set_persona(self, agent_id: str, persona: dict[str, Any]) -> Agent:
        """POST /persona: the persona's fields given change, the others stay."""
        with self._lock:
            agent = self.get(agent_id)
            merged = {**agent.persona.__dict__, **persona}
            return self._save(agent.evolve(persona=Persona.from_json(merged)))

    def delete(self, agent_id: str) -> None:
        with self._lock:
            agent = self.get(agent_id)
            if agent.is_default:
                raise AgentConflict("the default agent answers every line no other agent "
                                    "claims and cannot be deleted: change it with PATCH instead")
            self._store.remove(TABLE, KEY, agent_id)
            del self._agents[agent_id]
            log.info("agent %s deleted", agent_id)
        self._lines_changed()

    # -- inside ------------------------------------------------------------------------------

    def _filled(self, agent: Agent, fields: dict[str, Any], reset: bool) -> Agent:
        unknown = sorted(set(fields) - set(FIELDS) - {"id"})
        if unknown:
            raise InvalidAgent(f"unknown field {unknown[0]!r}; an agent has "
                               f"{', '.join(('id',) + FIELDS)}")
        base = self.default if not agent.is_default else default_agent(
            self.settings, self.tool_names())
        changes: dict[str, Any] = {}
        for name in FIELDS:
            if name in fields and fields[name] is not None:
                value = fields[name]
            elif reset:
                value = self._default_field(name, agent, base)
            else:
                continue
            if name == "persona" and not isinstance(value, Persona):
                # Persona fields left out: the defaults (POST, PUT), or as they were (PATCH).
                kept = base.persona if reset else agent.persona
                value = Persona.from_json({**kept.__dict__, **value})
            elif name in ("tools", "knowledge", "lines"):
                value = tuple(value)
            changes[name] = value
        return agent.evolve(**changes)

    @staticmethod
    def _default_field(name: str, agent: Agent, base: Agent) -> Any:
        if name == "name":
            return agent.id
        if name == "instructions":
            return base.instructions
        if name == "persona":
            return base.persona
        if name == "tools":
            return base.tools
        if name == "lines" and agent.is_default:
            return ()
        return () if name in ("knowledge", "lines") else ""

    def _save(self, agent: Agent, created: bool = False) -> Agent:
        """Check `agent` whole, then write it and make it visible (the lock is held)."""
        agent = check_agent(agent, self.tool_names(), self.table_exists, self._models(),
                            self._agents.get(agent.id))
        for line in agent.lines:
            owner = next((a for a in self._agents.values()
                          if a.id != agent.id and line in a.lines), None)
            if owner is not None:
                raise AgentConflict(f"line {line!r} already belongs to agent {owner.id!r}: take "
                                    "it from that agent first (PATCH its lines)")
        old = self._agents.get(agent.id)
        if not created:
            agent = agent.evolve(updated_at=iso(utc_now()))
        self._store.upsert(TABLE, KEY, agent.to_json())
        self._agents[agent.id] = agent
        log.info("agent %s %s", agent.id, "created" if created else "changed")
        if old is None or old.lines != agent.lines:
            self._lines_changed()
        return agent

    def _models(self) -> list[str]:
        llm = self.settings.llm
        if llm.backend == "none":
            return []
        return [llm.remote_model if llm.backend == "remote" else llm.model]

    def _lines_changed(self) -> None:
        if self.on_lines_changed is not None:
            try:
                self.on_lines_changed(self.lines())
            except Exception:  # the agents are stored; the accounts follow at the next start
                log.exception("agents: updating the SIP accounts for the lines failed")

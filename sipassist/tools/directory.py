"""The [directory]: spoken names ("the front desk", "reception please") to extensions.

Matching is loose, as callers and Whisper are: case, punctuation, "the" and "please" do not
count, a name said inside a longer phrase is found, and a near miss ("reseption") still
matches when it is clearly closer to one name than to any other.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from ..config import DirectorySettings

FILLER = frozenset({"the", "a", "an", "please", "to", "for", "me", "our", "your", "my"})
CLOSE_ENOUGH = 0.75  # difflib ratio of a near miss


@dataclass(frozen=True)
class Entry:
    name: str  # as configured, "_" read as a space: "front desk"
    target: str  # extension, phone number or sip: URI


def _key(text: str) -> str:
    return " ".join(w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in FILLER)


class Directory:
    def __init__(self, settings: DirectorySettings) -> None:
        self.entries = tuple(Entry(name, target) for name, target in settings.entries)
        self._keys = {_key(e.name): e for e in self.entries}

    def __bool__(self) -> bool:
        return bool(self.entries)

    @property
    def names(self) -> list[str]:
        return [e.name for e in self.entries]

    def spoken_list(self) -> str:
        """"reception, sales or the front desk"-style list for "I can put you through to ..."."""
        names = self.names
        return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]

    def find(self, said: str) -> Entry | None:
        """The entry `said` names (a name, loosely, or its very extension), or None."""
        key = _key(said)
        if not key:
            return None
        if key in self._keys:
            return self._keys[key]
        for entry in self.entries:  # its extension said as such: "1001"
            if key == _key(entry.target):
                return entry
        # A name inside a longer phrase: "someone at reception", the longest name first.
        inside = [k for k in self._keys if re.search(rf"\b{re.escape(k)}\b", key)]
        if inside:
            return self._keys[max(inside, key=len)]
        scores = sorted(((difflib.SequenceMatcher(None, key, k).ratio(), k) for k in self._keys),
                        reverse=True)
        if scores and scores[0][0] >= CLOSE_ENOUGH and (
                len(scores) == 1 or scores[0][0] - scores[1][0] >= 0.1):
            return self._keys[scores[0][1]]
        return None

"""Answering a call without leaving another on hold (baresip 1.0's `accept`).

baresip 1.0's menu `accept` runs ua_hold_answer: it answers the UA's current call (the last in
its list) after call_hold(true) on the call just before it, and fails when that one is an
incoming call still ringing (its re-INVITE cannot be sent). 1.0 has no answer that does not
hold, and every incoming call lands in the one UA whose user the INVITE names, so several UAs
would not keep inbound calls apart. What was measured instead (three calls on loopback):

- `callfind X` moves X to the end of the list, so `callfind A; callfind X; accept` puts A just
  before X: A is the call held, never a call still ringing in (unless A does not exist).
- `callfind A; resume` straight after, in the same write, undoes it: A is not on hold any more
  (listcalls), its far end got a hold and a resume re-INVITE, and baresip re-created A's player
  once (its JACK output port went and came back within ~80 ms; the bridge connects it again,
  see call_ports.py). `resume` of a call that is not held does nothing (call_hold returns at
  once), so every other call is resumed, whichever was held.
"""

from __future__ import annotations

from typing import Protocol


class _Call(Protocol):
    baresip_id: str
    established: bool


def answer_prologue(others: list[_Call]) -> list[tuple[str, str]]:
    """Commands before `callfind <answered>`: a call of ours, an answered one if there is one,
    goes just before it (a dialled call still ringing takes the hold as a pending re-INVITE,
    which the resume then turns back)."""
    if not others:
        return []
    front = next((c for c in reversed(others) if c.established), others[-1])
    return [("callfind", front.baresip_id)]


def resume_all(others: list[_Call]) -> list[tuple[str, str]]:
    """Commands after `accept`: each other call resumed (a no-op for one not on hold)."""
    commands: list[tuple[str, str]] = []
    for other in others:
        commands += [("callfind", other.baresip_id), ("resume", "")]
    return commands

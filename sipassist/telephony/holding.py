"""Answering a call without leaving another on hold (baresip 1.0's `accept`).

baresip 1.0's menu `accept` runs ua_hold_answer: it answers the UA's current call (the last in
its list) after call_hold(true) on the call just before it, and fails when that one is an
incoming call still ringing (its re-INVITE cannot be sent). 1.0 has no answer that does not
hold (no `acceptdir`). Not chosen: several UAs (every incoming call lands in the one UA whose
user the INVITE names, so inbound calls would still share one list), several baresip
processes (callers reach one SIP port), `answermode=auto` (it answers before the trust rules
run: a refused caller would get 200 and a BYE, not 486). What was measured instead (three
calls on loopback, baresip 1.0.0 with libre 1.1.0):

- `callfind X` moves X to the end of the list, so `callfind A; callfind X; accept` puts A just
  before X: A is the call held, never a call still ringing in (unless A does not exist).
- Held and then resumed (`callfind A; resume` after the accept), A's far end got a hold
  re-INVITE (sendonly) and a resume, and baresip re-created A's player (its JACK output port
  went and came back); the test phone's recorder restarted and lost what it had.
- So A first gets a plain re-INVITE (`callfind A; reinvite`), in the same write: while that
  transaction is open, libre queues the hold as a pending modification instead of sending
  it, and `resume` turns the pending offer back to sendrecv before it goes. A's far end sees
  two ordinary re-INVITEs, nothing is held (listcalls), no JACK port is re-created.
- `resume` of a call that is not held does nothing (call_hold returns at once), so each of our
  other calls is resumed, whichever one baresip picked, callers still ringing in included.
- Two callers at the same instant: `hold` of a call still ringing in fails (EINVAL, nothing
  sent) but leaves it flagged held, so the daemon's retried answer went through (the hold
  was then a no-op) and the second caller was later answered on hold; the first, answered
  but not yet reported established, was held by the second's answer (listcalls: both on
  hold). Now a caller ringing in is flagged held before an answer (the answer's hold of it
  is a no-op) and resumed after it (the flag cleared, again nothing sent): both answered at
  once, neither on hold.
"""

from __future__ import annotations

from typing import Protocol


class _Call(Protocol):
    baresip_id: str
    direction: str
    established: bool
    answered: bool


def answer_prologue(others: list[_Call]) -> list[tuple[str, str]]:
    """Commands before `callfind <answered>`.

    Each caller still ringing in is marked held first (`hold` fails on it, sending nothing,
    but leaves its flag set), so that the answer's hold of it is a no-op instead of an error.
    Then a call of ours goes just before the answered one, with a re-INVITE open so that the
    hold waits behind it: an answered call if there is one (also one whose ACK has not come),
    else a dialled one (still ringing, it holds the hold back the same way)."""
    ringing_in = [c for c in others
                  if c.direction == "incoming" and not (c.established or c.answered)]
    commands: list[tuple[str, str]] = []
    for call in ringing_in:
        commands += [("callfind", call.baresip_id), ("hold", "")]
    up = [c for c in others if c.established or c.answered]
    dialled = [c for c in others if c.direction == "outgoing"]
    front = (up or dialled or [None])[-1]
    if front is not None:
        commands += [("callfind", front.baresip_id), ("reinvite", "")]
    return commands


def resume_all(others: list[_Call]) -> list[tuple[str, str]]:
    """Commands after `accept`: every other call resumed (a no-op for one not on hold), a
    caller still ringing in too: its held flag is cleared (the re-INVITE fails, unsent), or
    baresip would answer it later on hold."""
    commands: list[tuple[str, str]] = []
    for other in others:
        commands += [("callfind", other.baresip_id), ("resume", "")]
    return commands

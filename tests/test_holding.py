"""The commands around baresip 1.0's `accept` that keep the other calls off hold."""

from __future__ import annotations

from dataclasses import dataclass

from sipassist.telephony.holding import answer_prologue, resume_all


@dataclass
class Call:
    baresip_id: str
    established: bool = True
    direction: str = "outgoing"
    answered: bool = False


def test_an_answered_call_goes_in_front_with_a_reinvite_open():
    ringing_out, up, ringing_in = Call("a", False), Call("b"), Call("c", False, "incoming")
    accepted = Call("d", False, "incoming", answered=True)
    assert answer_prologue([ringing_out, up, ringing_in]) == [
        ("callfind", "c"), ("hold", ""), ("callfind", "b"), ("reinvite", "")]
    assert answer_prologue([up, accepted, ringing_in])[-2:] == [("callfind", "d"), ("reinvite", "")]
    assert answer_prologue([ringing_in, ringing_out]) == [
        ("callfind", "c"), ("hold", ""), ("callfind", "a"), ("reinvite", "")]
    # A caller ringing in is flagged held, so the answer's hold of it is a no-op.
    assert answer_prologue([ringing_in]) == [("callfind", "c"), ("hold", "")]
    assert answer_prologue([]) == []


def test_every_other_call_is_resumed():
    assert resume_all([Call("a"), Call("b")]) == [("callfind", "a"), ("resume", ""),
                                                  ("callfind", "b"), ("resume", "")]

"""The commands around baresip 1.0's `accept` that keep the other calls off hold."""

from __future__ import annotations

from dataclasses import dataclass

from sipassist.telephony.holding import answer_prologue, resume_all


@dataclass
class Call:
    baresip_id: str
    established: bool = True


def test_an_answered_call_goes_in_front_with_a_reinvite_open():
    ringing_out, up, newer_ringing = Call("a", False), Call("b"), Call("c", False)
    assert answer_prologue([ringing_out, up, newer_ringing]) == [("callfind", "b"),
                                                                 ("reinvite", "")]
    assert answer_prologue([ringing_out]) == [("callfind", "a"), ("reinvite", "")]
    assert answer_prologue([]) == []


def test_every_other_call_is_resumed():
    assert resume_all([Call("a"), Call("b")]) == [("callfind", "a"), ("resume", ""),
                                                  ("callfind", "b"), ("resume", "")]

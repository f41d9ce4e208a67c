"""Which JACK ports are whose: the order baresip 1.0 was measured to register them in."""

from __future__ import annotations

from sipassist.telephony.call_ports import IN, OUT, Moved, PortBook


def test_pairs_go_to_calls_in_the_order_their_audio_started():
    book = PortBook()
    book.expect("dialled")  # its SDP answer came first...
    book.registered("baresip:output_1", True)
    book.expect("answered")  # ...the second call's offer came before the first's ports
    assert book.registered("baresip-01:input_1", False) is None
    book.registered("baresip-02:output_1", True)
    book.registered("baresip-03:input_1", False)
    assert book.ports_of("dialled") == ("baresip:output_1", "baresip-01:input_1")
    assert book.ports_of("answered") == ("baresip-02:output_1", "baresip-03:input_1")
    assert book.take_any() is None


def test_a_held_calls_recreated_player_stays_its_own():
    book = PortBook()
    book.expect("one")
    book.registered("baresip:output_1", True)
    book.registered("baresip-01:input_1", False)
    book.expect("two")
    book.registered("baresip-02:output_1", True)
    book.registered("baresip-03:input_1", False)
    # accept of a third call holds "one": its player goes and comes back (measured).
    book.expect("three")
    book.registered("baresip-04:output_1", True)
    book.registered("baresip-05:input_1", False)
    book.unregistered("baresip:output_1")
    assert book.ports_of("one") is None  # not usable while it is away
    moved = book.registered("baresip:output_1", True)
    assert moved == Moved("one", OUT, "baresip:output_1", "baresip:output_1")
    assert book.ports_of("one") == ("baresip:output_1", "baresip-01:input_1")
    assert book.ports_of("three") == ("baresip-04:output_1", "baresip-05:input_1")


def test_an_ended_calls_ports_are_not_taken_for_a_recreation():
    book = PortBook()
    book.expect("old")
    book.registered("baresip:output_1", True)
    book.registered("baresip-01:input_1", False)
    book.unregistered("baresip-01:input_1")  # it ends: both ports go, input first
    book.unregistered("baresip:output_1")
    book.expect("new")
    assert book.registered("baresip:output_1", True) is None  # a new call's, same name
    book.registered("baresip-01:input_1", False)
    assert book.ports_of("new") == ("baresip:output_1", "baresip-01:input_1")
    book.forget("old")
    book.forget("gone-before-its-ports")
    assert book.ports_of("old") is None and IN == 1

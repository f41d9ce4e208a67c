"""Caller trust rules, the INVITE rate limit and the SIP trace reader (no processes)."""

from __future__ import annotations

import logging

import pytest

from sipassist import config
from sipassist.telephony.sip_trace import END, START, SipTrace
from sipassist.telephony.trust import CallerTrust, RateLimit, RefusalLog


def sip_settings(**sip) -> config.SipSettings:
    return config.parse({"sip": sip}).sip


# -- config -------------------------------------------------------------------------------

def test_trust_defaults_are_the_lan_without_a_registrar_and_the_registrar_with_one():
    lan = CallerTrust(sip_settings())
    assert lan.callers == "networks"
    assert lan.check("192.168.1.20:5060").allowed and lan.check("127.0.0.1:5070").allowed
    assert lan.check("[fd00::5]:5060").allowed
    assert not lan.check("203.0.113.9:5060").allowed
    pbx = CallerTrust(sip_settings(registrar={"domain": "127.0.0.1:5060"}))
    assert pbx.callers == "registrar"
    assert pbx.check("127.0.0.1:5060").allowed
    refused = pbx.check("192.168.1.20:5060")
    assert not refused.allowed and "registrar" in refused.reason


@pytest.mark.parametrize("trust, fragment", [
    ({"callers": "somebody"}, "sip.trust.callers"),
    ({"callers": "registrar"}, "needs a [sip.registrar]"),
    ({"networks": ["192.168.1.0/33"]}, "192.168.1.0/33"),
    ({"networks": "192.168.1.0/24"}, "list"),
    ({"callbacks": "anywhere"}, "sip.trust.callbacks"),
    ({"max_invites": 0}, "max_invites"),
    ({"colour": "red"}, "unknown key"),
])
def test_bad_trust_settings_name_the_fix(trust, fragment):
    with pytest.raises(config.ConfigError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        config.parse({"sip": {"trust": trust}})


def test_listed_hosts_and_networks_and_anyone():
    trust = CallerTrust(sip_settings(trust={"networks": ["192.168.7.0/24", "10.1.2.3"]}))
    assert trust.check("192.168.7.99:5060").allowed and trust.check("10.1.2.3:5060").allowed
    assert not trust.check("10.1.2.4:5060").allowed
    assert not trust.check("127.0.0.1:5060").allowed  # loopback only when listed
    assert not trust.check("").allowed  # an unknown source is never trusted...
    anyone = CallerTrust(sip_settings(trust={"callers": "anyone"}))
    assert anyone.check("203.0.113.9:5060").allowed and anyone.check("").allowed  # ...but here


# -- rate limit and refusal log -----------------------------------------------------------

def test_rate_limit_refuses_a_flooding_source_until_it_pauses():
    limit = RateLimit(max_invites=3, window=10.0)
    assert [limit.allow("10.0.0.5", now=t) for t in (0, 1, 2, 3, 4)] == [True] * 3 + [False] * 2
    assert limit.allow("10.0.0.6", now=4)  # other sources are not affected
    assert not limit.allow("10.0.0.5", now=12)  # refused INVITEs count: still flooding
    assert limit.allow("10.0.0.5", now=30)  # quiet for a window: welcome again


def test_refusals_are_logged_once_a_minute_per_source_with_a_count(caplog):
    refusals = RefusalLog(every=60.0)
    with caplog.at_level(logging.WARNING, logger="sipassist.telephony.trust"):
        for _ in range(500):
            refusals.refused("203.0.113.9:5060", "source not in sip.trust.networks", "sip:x@y")
        refusals.refused("203.0.113.10:5060", "source not in sip.trust.networks", "sip:x@y")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines
    assert "203.0.113.9:5060" in lines[0] and "sip.trust.networks" in lines[0]
    refusals.every = 0.0  # the next report carries the count of those not logged
    with caplog.at_level(logging.WARNING, logger="sipassist.telephony.trust"):
        refusals.refused("203.0.113.9:5060", "source not in sip.trust.networks", "sip:x@y")
    assert "499 more" in caplog.records[-1].getMessage()


# -- call-backs ---------------------------------------------------------------------------

def test_callbacks_go_to_the_callers_extension_on_our_domain_only():
    trust = CallerTrust(sip_settings(dial_domain="pbx.lan:5060"))
    assert trust.callback_extension("sip:1001@pbx.lan", "192.168.1.5:5060") == "1001"
    assert trust.callback_extension("sip:1001@PBX.lan:5060;transport=udp", "") == "1001"
    # A From naming another host: no call-back at all (never to that host).
    assert trust.callback_extension("sip:+19005551234@203.0.113.9", "192.168.1.5:5060") is None
    assert trust.callback_extension("sip:1001@pbx.lan.evil.example", "192.168.1.5:5060") is None
    assert trust.callback_extension("sip:10%0a01@pbx.lan", "192.168.1.5:5060") is None
    assert CallerTrust(sip_settings()).callback_extension("sip:1001@pbx.lan", "") is None
    off = CallerTrust(sip_settings(dial_domain="pbx.lan", trust={"callbacks": "off"}))
    assert off.callback_extension("sip:1001@pbx.lan", "") is None


def test_a_call_through_the_registrar_is_vouched_for():
    trust = CallerTrust(sip_settings(registrar={"domain": "127.0.0.1"}))
    # The PBX relays an outside caller: their number is called back through the PBX.
    assert trust.callback_extension("sip:+15551234567@carrier.example", "127.0.0.1:5060") \
        == "+15551234567"
    assert trust.callback_extension("sip:+15551234567@carrier.example", "10.0.0.9:5060") is None


# -- the SIP trace --------------------------------------------------------------------------

def trace_block(first: str, start_line: str, *headers: str, body: str = "") -> list[str]:
    return [START, first, start_line, *headers, "", *body.splitlines(), END]


def test_sip_trace_gives_the_invites_source_and_swallows_the_trace():
    trace = SipTrace()
    lines = [
        "baresip is ready.",
        *trace_block("UDP 192.168.1.5:5062 -> 192.168.1.2:5060",
                     "INVITE sip:assistant@192.168.1.2 SIP/2.0",
                     "From: <sip:+19005551234@203.0.113.9>;tag=1",
                     "Call-ID: abc-1@host", "CSeq: 1 INVITE", body="v=0\ni=session"),
        *trace_block("UDP 192.168.1.2:5060 -> 192.168.1.5:5062", "SIP/2.0 200 OK",
                     "i: abc-1@host", "CSeq: 1 INVITE"),
        # A second INVITE claiming the same Call-ID from elsewhere does not relabel it.
        *trace_block("UDP 10.9.9.9:5060 -> 192.168.1.2:5060",
                     "INVITE sip:assistant@192.168.1.2 SIP/2.0", "Call-ID: abc-1@host"),
        "ua: something to log",
    ]
    logged = [kept for kept in map(trace.feed, lines) if kept]
    assert logged == ["baresip is ready.", "ua: something to log"]
    assert trace.source_of("abc-1@host", timeout=0) == "192.168.1.5:5062"
    assert trace.answered("abc-1@host", timeout=0)
    assert trace.source_of("other@host", timeout=0.05) == ""
    assert not trace.answered("other@host", timeout=0)


def test_sip_trace_blocks_that_follow_each_other_on_one_line():
    trace = SipTrace()
    assert trace.feed("[0:00:03] audio=64000/64000 (bit/s)\r" + START) == \
        "[0:00:03] audio=64000/64000 (bit/s)"  # the status line has no newline of its own
    assert trace.feed("UDP 127.0.0.2:5080 -> 127.0.0.1:5060") == ""
    assert trace.feed("INVITE sip:a@127.0.0.1 SIP/2.0") == ""
    assert trace.feed("Call-ID: one") == ""
    assert trace.feed(END + START) == ""  # baresip prints the next start right after the end
    assert trace.feed("UDP 127.0.0.3:5080 -> 127.0.0.1:5060") == ""
    assert trace.feed("INVITE sip:a@127.0.0.1 SIP/2.0") == ""
    assert trace.feed("Call-ID: two" + END) == ""
    assert trace.feed(END + "call: answering call") == "call: answering call"
    assert trace.feed("\x1b[31mua: UA not found") == "\x1b[31mua: UA not found"
    assert trace.source_of("one", 0) == "127.0.0.2:5080"
    assert trace.source_of("two", 0) == "127.0.0.3:5080"

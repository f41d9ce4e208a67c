"""Dial targets: only a URI built from checked parts ever reaches baresip."""

from __future__ import annotations

import pytest

from sipassist.calls.targets import TargetError, dial_uri


@pytest.mark.parametrize(("extension", "uri"), [
    ("1001", "sip:1001@pbx.lan"),
    ("+15551234567", "sip:+15551234567@pbx.lan"),
    ("*97", "sip:*97@pbx.lan"),
    ("alice.smith", "sip:alice.smith@pbx.lan"),
    ("sip:bob@10.0.0.5", "sip:bob@10.0.0.5"),
    ("sip:bob@phone.example.lan:5062", "sip:bob@phone.example.lan:5062"),
    ("SIP:bob@[::1]:5060", "sip:bob@[::1]:5060"),
])
def test_valid_targets(extension, uri):
    assert dial_uri(extension, "pbx.lan") == uri


@pytest.mark.parametrize("extension", [
    "", " 1001", "1001\n", "1001\ndial sip:x@y", "10 01", "1001;transport=tcp", "a/b",
    "sip:a@b?Subject=x", "sip:a b@host", "sip:a@b;lr", "sip:@host", "sip:a@", "sip:a@host:99999",
    "x" * 200, "-1001", "sips:a@b", "<sip:a@b>", "1001\r", "a\x00b",
])
def test_invalid_targets(extension):
    with pytest.raises(TargetError):
        dial_uri(extension, "pbx.lan")


def test_bare_extension_needs_a_domain():
    with pytest.raises(TargetError, match="dial_domain"):
        dial_uri("1001", "")
    assert dial_uri("sip:1001@10.0.0.9", "") == "sip:1001@10.0.0.9"

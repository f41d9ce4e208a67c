"""The real source address of each incoming INVITE, read from baresip's SIP trace (`-s`).

baresip 1.0's CALL_INCOMING event names only the peer URI, which the caller writes into its
From header as it likes; no event field, command (`listcalls`, `callstat`) or account
parameter gives the address the request came from. With `-s`, baresip prints every SIP
message it sends or receives on stdout, each as a block:

    ESC[36;1m#
    UDP 192.168.1.5:5060 -> 192.168.1.2:5060
    INVITE sip:assistant@192.168.1.2 SIP/2.0
    ...headers, blank line, body...
    ESC[;m

The supervisor hands baresip's output lines to `feed`, which keeps the source of each INVITE
by its Call-ID (baresip's call id is the Call-ID), and notes each 200 OK to an INVITE
(the proof an `accept` answered that call); it swallows the trace, so the journal gets none
of it. Measured on loopback: the trace line is read no later than the event.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict

START = "\x1b[36;1m#"
END = "\x1b[;m"
_ADDRESSES = re.compile(r"(UDP|TCP|TLS|WSS?) (\S+) -> (\S+)")
_CALL_ID = re.compile(r"(?:call-id|i)\s*:\s*(\S+)", re.IGNORECASE)
_CSEQ = re.compile(r"cseq\s*:\s*\d+\s+(\S+)", re.IGNORECASE)
MAX_REMEMBERED = 2000  # Call-IDs kept; older ones are forgotten first


class SipTrace:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._sources: OrderedDict[str, str] = OrderedDict()
        self._answered: OrderedDict[str, None] = OrderedDict()
        self._block: list[str] | None = None

    def feed(self, line: str) -> str:
        """Take one line of baresip's output; returns the part of it that is not trace (to
        be logged). Markers may sit mid-line: baresip's status line ends in a carriage
        return, not a newline, and a log line may follow an end marker directly."""
        kept = []
        rest = line
        while rest:
            if self._block is None:
                start = rest.find(START)
                if start < 0:
                    kept.append(rest)
                    break
                kept.append(rest[:start])
                self._block = []
                rest = rest[start + len(START):]
            else:
                end = rest.find(END)
                if end < 0:
                    self._add(rest)
                    break
                self._add(rest[:end])
                self._finish()
                rest = rest[end + len(END):]
        return "".join(kept).replace(END, "").strip()  # END also resets a red error line

    def _add(self, line: str) -> None:
        assert self._block is not None
        if len(self._block) < 40:  # headers come first; the body is not needed
            self._block.append(line)

    def source_of(self, call_id: str, timeout: float) -> str:
        """"ip:port" the INVITE of `call_id` came from; "" if not seen within `timeout` s."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while call_id not in self._sources:
                left = deadline - time.monotonic()
                if left <= 0:
                    return ""
                self._cond.wait(left)
            return self._sources[call_id]

    def answered(self, call_id: str, timeout: float) -> bool:
        """Has a 200 OK to the INVITE of `call_id` been sent (waiting up to `timeout` s)?"""
        with self._cond:
            return self._cond.wait_for(lambda: call_id in self._answered, timeout)

    def _finish(self) -> None:
        block, self._block = self._block, None
        if not block or len(block) < 2:
            return
        addresses = _ADDRESSES.fullmatch(block[0].strip())
        invite, ok = block[1].startswith("INVITE "), block[1].startswith("SIP/2.0 200")
        if not addresses or not (invite or ok):
            return
        call_id = method = None
        for header in block[2:]:
            if not header.strip():
                break  # end of headers
            call_id = call_id or _group(_CALL_ID.match(header))
            method = method or _group(_CSEQ.match(header))
        if call_id and invite:
            self._remember(call_id, addresses.group(2))
        elif call_id and ok and method == "INVITE":
            with self._cond:
                self._answered[call_id] = None
                while len(self._answered) > MAX_REMEMBERED:
                    self._answered.popitem(last=False)
                self._cond.notify_all()

    def _remember(self, call_id: str, source: str) -> None:
        with self._cond:
            # A retransmission or a second INVITE with the same Call-ID from elsewhere: the
            # first source stays (a spoofer cannot relabel a call it did not send).
            if call_id not in self._sources:
                self._sources[call_id] = source
                while len(self._sources) > MAX_REMEMBERED:
                    self._sources.popitem(last=False)
            self._cond.notify_all()


def _group(match: re.Match[str] | None) -> str | None:
    return match.group(1) if match else None

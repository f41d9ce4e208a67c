"""Caller trust: which sources may ring the box, how fast, and whom a call may have it call back.

The source is the address the INVITE really came from (baresip's SIP trace, see sip_trace.py),
never what the From header claims. A call-back (a timer or reminder set during a call) goes to
the caller's own extension dialled at the registrar or dial domain, so no caller can make the
box ring a host of their choosing.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass

from ..calls.targets import PHONE_NUMBER, SIP_URI, SIP_USER
from ..config import SipSettings

log = logging.getLogger(__name__)

RESOLVE_EVERY = 300.0  # seconds the registrar's resolved addresses are kept
LOG_EVERY = 60.0  # refusals of one source and reason are logged at most this often
MAX_SOURCES = 4096  # sources whose recent INVITEs are remembered


def host_of(address: str) -> str:
    """"192.168.1.5" from "192.168.1.5:5060", "::1" from "[::1]:5060"."""
    if address.startswith("["):
        return address[1:].split("]", 1)[0]
    if address.count(":") == 1:
        return address.split(":", 1)[0]
    return address


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str = ""  # why refused, for the log


class RefusalLog:
    """WARNING lines for refused INVITEs: the first at once, then one summary a minute per
    source and reason, so a flood cannot fill the journal."""

    def __init__(self, every: float = LOG_EVERY) -> None:
        self.every = every
        self._lock = threading.Lock()
        self._last: dict[tuple[str, str], tuple[float, int]] = {}

    def refused(self, source: str, reason: str, peer_uri: str) -> None:
        key = (host_of(source), reason)
        now = time.monotonic()
        with self._lock:
            last, count = self._last.get(key, (-self.every, 0))
            if now - last < self.every:
                self._last[key] = (last, count + 1)
                return
            if len(self._last) >= MAX_SOURCES:
                self._last.clear()
            self._last[key] = (now, 0)
        more = f" ({count} more since the last report)" if count else ""
        log.warning("refused an incoming call from %s (From %s): %s%s", source or "unknown",
                    peer_uri, reason, more)


class RateLimit:
    """At most `max_invites` INVITEs per source address within `window` seconds; refused ones
    count too, so a source that keeps flooding stays refused until it pauses for a window."""

    def __init__(self, max_invites: int, window: float) -> None:
        self.max_invites = max_invites
        self.window = window
        self._lock = threading.Lock()
        self._seen: dict[str, deque[float]] = {}

    def allow(self, host: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self._lock:
            times = self._seen.get(host)
            if times is None:
                if len(self._seen) >= MAX_SOURCES:
                    self._forget_quiet(now)
                times = self._seen[host] = deque(maxlen=self.max_invites * 4)
            while times and now - times[0] > self.window:
                times.popleft()
            allowed = len(times) < self.max_invites
            times.append(now)
            return allowed

    def _forget_quiet(self, now: float) -> None:
        for host in [h for h, t in self._seen.items() if not t or now - t[-1] > self.window]:
            del self._seen[host]
        if len(self._seen) >= MAX_SOURCES:  # all busy: a spoofed-source flood; start afresh
            self._seen.clear()


class CallerTrust:
    """The [sip.trust] rules, applied to one incoming call at a time."""

    def __init__(self, sip: SipSettings) -> None:
        self.sip = sip
        trust = sip.trust
        self.callers = trust.callers or ("registrar" if sip.registrar else "networks")
        self.networks = [ipaddress.ip_network(n, strict=False) for n in trust.networks]
        self.rate = RateLimit(trust.max_invites, trust.window_seconds)
        self.refusals = RefusalLog()
        self._registrar_ips: frozenset[str] = frozenset()
        self._resolved_at = -RESOLVE_EVERY

    # -- who may call in --------------------------------------------------------------------

    def check(self, source: str) -> Verdict:
        """May a call from `source` ("ip:port", "" if unknown) ring? Counts it for the rate."""
        host = host_of(source)
        if self.callers != "anyone":
            if not host:
                return Verdict(False, "its source address is unknown")
            if self.callers == "registrar" and not self.from_registrar(host):
                return Verdict(False, "not sent by the registrar (sip.trust.callers)")
            if self.callers == "networks" and not self._in_networks(host):
                return Verdict(False, "source not in sip.trust.networks")
        if host and not self.rate.allow(host):
            return Verdict(False, f"more than {self.rate.max_invites} INVITEs within "
                                  f"{self.rate.window:g} s (sip.trust.max_invites)")
        return Verdict(True)

    def from_registrar(self, host: str) -> bool:
        registrar = self.sip.registrar
        if registrar is None or not host:
            return False
        return _normal(host) in self._registrar_addresses(registrar.domain)

    def _in_networks(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        if address.version == 6 and address.ipv4_mapped:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks
                   if network.version == address.version)

    def _registrar_addresses(self, domain: str) -> frozenset[str]:
        now = time.monotonic()
        if now - self._resolved_at > RESOLVE_EVERY or not self._registrar_ips:
            name = host_of(domain)
            try:
                infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_UDP)
                self._registrar_ips = frozenset(_normal(info[4][0]) for info in infos)
            except OSError as exc:
                log.warning("cannot resolve the registrar %s: %s", name, exc)
            self._resolved_at = now
        return self._registrar_ips

    # -- whom a call may call back ----------------------------------------------------------

    def callback_extension(self, peer_uri: str, source: str) -> str | None:
        """The extension a timer set on this call may ring, or None (no call-back allowed).

        Only the user part of the caller's URI is kept, and only when the URI names the
        registrar or dial domain (or the call came through the registrar, which vouches for
        its From); it is dialled at the configured domain, never at the From's host.
        """
        if self.sip.trust.callbacks == "off" or not self.sip.dial_host:
            return None
        match = SIP_URI.fullmatch(peer_uri.split(";", 1)[0])
        if not match:
            return None
        user, host = match.group("user"), match.group("host").strip("[]").lower()
        if not (PHONE_NUMBER.fullmatch(user) or SIP_USER.fullmatch(user)):
            return None
        domains = {host_of(self.sip.dial_host).lower()}
        if self.sip.registrar:
            domains.add(host_of(self.sip.registrar.domain).lower())
        if host in domains or self.from_registrar(host_of(source)):
            return user
        return None


def _normal(host: str) -> str:
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host.lower()
    if address.version == 6 and address.ipv4_mapped:
        address = address.ipv4_mapped
    return str(address)

"""The switchboard: jackd and baresip kept running, the ctrl_tcp link, calls and their events.

Processes are restarted by their supervisors; a monitor thread re-links the JACK bridge and the
ctrl_tcp connection after a restart. A call in flight when baresip or jackd dies gets a
`LinkLost` message and fails with that reason; nothing else is disturbed. Before baresip is
stopped (daemon stop, or restarted to join a new jackd) its calls are hung up, so the far end
gets a BYE. A ctrl_tcp link that drops while baresip lives on (ctrl_tcp takes one connection; a
local process connecting replaces ours) is reconnected and the calls re-synchronised from
`listcalls`: baresip kept them up, so they go on.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import jack

from ..config import JACK_BARESIP_CLIENT, JACK_BRIDGE_CLIENT, Settings
from . import baresip
from .bridge import BridgeError, JackBridge, NoJackServer
from .ctrl import CtrlConnection, CtrlError, listed_calls
from .holding import answer_prologue, resume_all
from .events import (
    CALL_CLOSED,
    CALL_ESTABLISHED,
    CALL_INCOMING,
    CALL_REMOTE_SDP,
    REGISTER_FAIL,
    REGISTER_OK,
    BaresipEvent,
    CommandResult,
    Disconnected,
)
from .process import SupervisedProcess
from .sip_trace import SipTrace
from .trust import CallerTrust, Verdict

log = logging.getLogger(__name__)

JACKD_START_SECONDS = 15
JACKD_START_TRIES = 3  # jackd exits at start this often: give up and say why
MAX_HANGUPS = 16  # bounds the hang-up-every-call loop (baresip holds a few calls at most)
# baresip takes this many calls beyond queue.max_concurrent (calls being refused, or ringing
# while another ends); more get "486 Max Calls" from baresip at once.
EXTRA_CALL_SLOTS = 4
SOURCE_WAIT = 1.0  # seconds to wait for an INVITE's trace (it comes before the event)
STRAY_CHECK_EVERY = 2.0  # seconds between comparisons of baresip's calls with the daemon's
_CALL_COUNT = re.compile(r"Active calls \((\d+)\)")
_LINE = re.compile(r"\[line (\d+)\]")
_CALLSTAT_ID = re.compile(r"\bid=(\S+)")


def line_user(aor: str) -> str:
    """"reception" from an account's "sip:reception@192.168.1.2:5060" (or "<sip:...>")."""
    user = aor.strip("<>").split(":", 1)[-1].split("@", 1)[0]
    return user.lower() if "@" in aor else ""


def _found(result: CommandResult, call_id: str) -> bool:
    """Did `callfind` make `call_id` the current call? (It answers ok either way.)"""
    return result.ok and result.data.strip() == f"setting current call: {call_id}"


class TelephonyStartError(RuntimeError):
    """jackd could not be started; the message says why (its own last words)."""


# JACK-Client prints every failed connection attempt; route that through logging instead.
jack.set_error_function(lambda message: log.debug("jack: %s", message))
jack.set_info_function(lambda message: log.debug("jack: %s", message))


@dataclass(frozen=True)
class LinkLost:
    """Sent to a call whose baresip or jackd went away under it."""

    reason: str


class PhoneCall:
    """One call, dialed or answered; its events arrive on `events` in order."""

    def __init__(self, uri: str, direction: str = "outgoing", baresip_id: str = "") -> None:
        self.uri = uri
        self.direction = direction
        self.baresip_id = baresip_id
        self.source = ""  # "ip:port" an incoming call's INVITE came from (not its From)
        self.called = ""  # the line an incoming call is for: a SIP user or extension
        self.refused = False  # turned away by the trust rules
        self.events: queue.Queue[BaresipEvent | LinkLost] = queue.Queue()
        self.closed = False
        self.established = False
        self.answered = False  # we accepted it (its CALL_ESTABLISHED may not have come yet)

    def next_event(self, timeout: float | None) -> BaresipEvent | LinkLost | None:
        try:
            return self.events.get(timeout=timeout)
        except queue.Empty:
            return None

    def wait_for(self, types: set[str], timeout: float) -> BaresipEvent | LinkLost | None:
        """The first event of one of `types`, or LinkLost; None once `timeout` s have passed."""
        deadline = time.monotonic() + timeout
        while True:
            event = self.next_event(max(0.0, deadline - time.monotonic()))
            if event is None or isinstance(event, LinkLost) or event.type in types:
                return event


class Switchboard:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        audio = settings.audio
        runtime = settings.paths.runtime_dir
        self.jackd = SupervisedProcess(
            "jackd",
            ["jackd", "--no-realtime", "--sync", "-n", audio.jack_server, "-d", "dummy",
             "-r", str(audio.sample_rate), "-p", str(audio.period)],
            env={"JACK_NO_AUDIO_RESERVATION": "1"},
            on_started=lambda pid: self._wake.set(),
            on_exited=lambda code: self._link_down(),
            pid_file=runtime / "jackd.pid",
        )
        self.sip_trace = SipTrace()
        self.trust = CallerTrust(settings.sip)
        self.baresip = SupervisedProcess(
            "baresip", baresip.argv(settings.baresip_dir, sip_trace=True),
            env={"JACK_DEFAULT_SERVER": audio.jack_server},
            on_started=lambda pid: self._wake.set(),
            on_exited=lambda code: self._link_down(),
            pid_file=runtime / "baresip.pid",
            output_filter=self.sip_trace.feed,
        )
        self.bridge = JackBridge(audio.jack_server, audio.sample_rate,
                                 remote_client=JACK_BARESIP_CLIENT, client_name=JACK_BRIDGE_CLIENT,
                                 on_shutdown=self._link_down)
        self._ctrl: CtrlConnection | None = None
        self._ready = threading.Event()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._dial_lock = threading.Lock()
        self._calls_lock = threading.Lock()
        self._unbound: list[PhoneCall] = []
        self._calls: dict[str, PhoneCall] = {}
        # Incoming calls refused or waiting for the trust check, until baresip closes them.
        self._turned_away: dict[str, PhoneCall] = {}
        self._gate: queue.Queue[PhoneCall | None] = queue.Queue()
        self._gate_thread: threading.Thread | None = None
        self._command_lock = threading.Lock()  # one call-addressed command at a time
        self._audio_started: set[str] = set()  # call ids whose first SDP baresip reported
        self._strays = 0  # calls baresip holds that the daemon does not know
        self._strays_checked = 0.0
        self._registered = False
        self._bridge_jackd_pid: int | None = None
        self._ctrl_baresip_pid: int | None = None  # the baresip our ctrl link talks to
        self._process_errors_seen = 0
        # Set by the daemon: runs (on its own thread) for each incoming call.
        self.on_incoming: Callable[[PhoneCall], None] | None = None
        self._monitor: threading.Thread | None = None
        self._lines: set[str] = set()  # agents' lines: a baresip account each (set_lines)
        self.registered_lines: set[str] = set()  # those the registrar took, if there is one

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start jackd and baresip; TelephonyStartError (with jackd's reason) if jackd fails."""
        baresip.write_config(self.settings.baresip_dir, self.settings.sip, self.settings.audio,
                             max_calls=self.settings.queue.max_concurrent + EXTRA_CALL_SLOTS,
                             lines=self._lines)
        # An earlier run killed with SIGKILL may have left baresip (holding the SIP and ctrl
        # ports) and jackd (holding the server name) running: stop them, baresip first.
        self.baresip.stop_leftovers()
        self.jackd.stop_leftovers()
        self._refuse_foreign_jackd()
        self._gate_thread = threading.Thread(target=self._gate_loop, name="incoming-gate",
                                             daemon=True)
        self._gate_thread.start()
        self.jackd.start()
        try:
            self._open_bridge(timeout=JACKD_START_SECONDS, during_start=True)
        except BridgeError as exc:
            self.jackd.stop()
            raise TelephonyStartError(str(exc)) from None
        self.jackd.mark_healthy()
        self.baresip.start()
        self._monitor = threading.Thread(target=self._monitor_loop, name="switchboard",
                                         daemon=True)
        self._monitor.start()

    def _refuse_foreign_jackd(self) -> None:
        """A JACK server of our name that we did not start: the bridge would join it."""
        try:
            self.bridge.open()
        except NoJackServer:
            return  # none runs: good
        except BridgeError:
            pass  # one runs, at another sample rate
        else:
            self.bridge.close()
        name = self.settings.audio.jack_server
        raise TelephonyStartError(
            f"a JACK server named {name!r} is already running and was not started by this"
            " daemon: stop it, or set audio.jack_server to another name")

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        self._gate.put(None)
        self._fail_active("the daemon is shutting down")
        if self._monitor:
            self._monitor.join(5)
        self._hangup_all()  # a BYE to each far end before baresip goes
        ctrl, self._ctrl = self._ctrl, None
        if ctrl:
            ctrl.close()
        self.baresip.stop()
        self.bridge.close()
        self.jackd.stop()

    def health_problem(self) -> str | None:
        """None when jackd, the bridge and baresip all answer; else what is wrong."""
        if self.jackd.pid is None:
            return "jackd is not running"
        if not self.bridge.alive:
            return "the JACK bridge is not connected"
        try:
            result = self._require_ctrl().command("reginfo", timeout=3)
        except CtrlError as exc:
            return str(exc)
        if not result.ok:
            return "baresip did not answer reginfo"
        if self.settings.sip.registrar and not self._registered:
            return f"not registered with {self.settings.sip.registrar.domain}"
        return None

    @property
    def degraded_reason(self) -> str | None:
        """Why calls cannot be served as they should right now (cheap: no baresip round trip)."""
        if not self.ready:
            return "telephony is starting or being restarted"
        if self._strays:
            return (f"baresip holds {self._strays} call(s) the daemon does not know; "
                    "clearing them")
        return None

    def wait_ready(self, timeout: float) -> bool:
        return self._ready.wait(timeout)

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    @property
    def sip_registered(self) -> bool:
        """Registered with the registrar; with none configured, baresip is up and listening."""
        if self.settings.sip.registrar is None:
            return self.ready
        return self.ready and self._registered

    @property
    def active_calls(self) -> int:
        with self._calls_lock:
            return len(self._calls) + len(self._unbound)

    def set_lines(self, lines: set[str]) -> None:
        """Answer calls to these SIP users / extensions too (the agents' lines): a baresip
        account each, added and removed at run time (ctrl `uanew`/`uadel`) and written to
        the accounts file, so a restarted baresip has them."""
        sip = self.settings.sip
        wanted = {line for line in lines if line != baresip.main_user(sip).lower()}
        with self._command_lock:
            added, removed = wanted - self._lines, self._lines - wanted
            self._lines = wanted
            self.registered_lines -= removed
            if self.settings.baresip_dir.exists():
                baresip.write_accounts(self.settings.baresip_dir, sip, wanted)
            ctrl = self._ctrl
            if ctrl is None or not (added or removed):
                return  # baresip reads the file when it starts
            commands = [("uanew", baresip.account_line(sip, line)) for line in sorted(added)]
            commands += [("uadel", baresip.line_aor(sip, line)) for line in sorted(removed)]
            for name, params in commands:
                try:
                    result = ctrl.command(name, params)
                except CtrlError as exc:  # the file has it: a restarted baresip will too
                    log.warning("baresip %s %s failed: %s", name, params.split(";")[0], exc)
                    continue
                log.info("baresip %s %s: %s", name, params.split(";")[0],
                         "ok" if result.ok else result.data.strip())

    # -- calls -------------------------------------------------------------------------------

    def dial(self, uri: str) -> PhoneCall:
        """Start a call to an already validated SIP URI.

        `callstat` in the same write reports the new call (it is baresip's current call then):
        its id is bound on the reader thread before any of the call's events is routed.
        `uafind` first: an incoming call makes its line's account baresip's current one, and
        `dial` calls from the current account; the box calls out as its own user (measured)."""
        call = PhoneCall(uri)
        dialled = threading.Event()
        own = baresip.line_aor(self.settings.sip, baresip.main_user(self.settings.sip))

        def bind(index: int, result: CommandResult) -> None:
            if index == 1 and result.ok:
                dialled.set()
            elif index == 2 and dialled.is_set():
                found = _CALLSTAT_ID.search(result.data)
                if found:
                    self._bind(call, found.group(1))

        with self._dial_lock:
            ctrl = self._require_ctrl()
            with self._calls_lock:
                self._unbound.append(call)
            try:
                with self._command_lock:  # the new call becomes baresip's current call
                    found, result, _ = ctrl.batch(
                        [("uafind", own), ("dial", uri), ("callstat", "")], timeout=5,
                        on_reply=bind)
            except CtrlError:
                self._forget(call)
                raise
            if not found.ok:  # dialled from the current account all the same
                log.warning("baresip has no account %s to call out from: %s", own,
                            found.data.strip())
            if not result.ok:
                self._forget(call)
                raise CtrlError(f"baresip refused to dial: {result.data.strip() or 'no reason'}")
        return call

    def _bind(self, call: PhoneCall, call_id: str) -> None:
        with self._calls_lock:
            if call in self._unbound:
                self._unbound.remove(call)
                call.baresip_id = call_id
                self._calls[call_id] = call

    def accept(self, call: PhoneCall, timeout: float = 3.0) -> None:
        """Answer this incoming call, and no other, leaving every other call as it was.

        baresip 1.0's `accept` answers its current call after putting the call listed just
        before it on hold (ua_hold_answer), and fails when that one is still ringing in. So,
        in one write (see holding.py): one of our answered calls is put just before this one
        with a re-INVITE under way (the hold then only waits as a pending offer), this one is
        answered, and each of our other calls is resumed (a no-op unless held).
        Calls being turned away are hung up first, and the answer is retried until baresip's
        trace shows the 200 OK went out.
        """
        deadline = time.monotonic() + timeout
        while True:
            self._hang_up_turned_away()
            with self._calls_lock:
                others = [c for c in [*self._calls.values(), *self._turned_away.values()]
                          if c is not call and c.baresip_id and not c.closed]
            result = self._call_command(call, "accept", before=answer_prologue(others),
                                        after=resume_all(others))
            if not result.ok:
                raise CtrlError(f"baresip could not accept the call: {result.data.strip()}")
            call.answered = True
            if not call.source:  # no trace of this call's INVITE: nothing to check the answer by
                return
            if self.sip_trace.answered(call.baresip_id, timeout=0.3) or call.closed:
                return
            if time.monotonic() > deadline:
                raise CtrlError("baresip did not answer the call (another call was ringing)")
            log.info("baresip did not answer %s; turning the other calls away and retrying",
                     call.baresip_id)

    def reject(self, call: PhoneCall) -> None:
        """Refuse an incoming call before answering: the caller hears busy (486)."""
        self.hangup(call)

    def hangup(self, call: PhoneCall, wait: float = 5.0) -> None:
        """Hang up and wait (up to `wait` s) until baresip reports the call closed."""
        if call.closed:
            return
        try:
            self._call_command(call, "hangup")
        except CtrlError as exc:
            log.warning("hangup failed: %s", exc)
            return
        if not call.closed and call.wait_for({CALL_CLOSED}, wait) is None:
            log.warning("baresip reported no CALL_CLOSED within %g s", wait)

    def transfer(self, call: PhoneCall, uri: str) -> None:
        """Blind transfer (SIP REFER) of this call to an already validated SIP URI; the outcome
        arrives as the call's CALL_CLOSED ("Call transfered") or TRANSFER_FAILED event."""
        result = self._call_command(call, "transfer", uri)
        if not result.ok:
            raise CtrlError(f"baresip could not transfer the call: {result.data.strip()}")

    def send_digits(self, call: PhoneCall, digits: str) -> None:
        """DTMF (RFC 4733 telephone-events) on this call, digits already checked: baresip
        1.0's menu `sndcode` once per digit, as it releases a key only after its last one
        (a repeated digit would otherwise be one long press)."""
        for result in self._call_commands(call, [("sndcode", digit) for digit in digits]):
            if not result.ok:
                raise CtrlError(f"baresip could not send the digits: {result.data.strip()}")

    def request_hangup(self, call: PhoneCall) -> None:
        """Hang up without waiting: the call's owner sees CALL_CLOSED among its events."""
        if not call.closed:
            self._call_command(call, "hangup")

    def finish(self, call: PhoneCall) -> None:
        """The runner is done with the call: hang it up if it is still open (a half-open call
        must not hold one of baresip's slots), then stop routing its events."""
        if not call.closed and call.baresip_id and self.ready:
            self.hangup(call, wait=2.0)
        self._forget(call)

    # -- internals --------------------------------------------------------------------------

    def _link_down(self) -> None:
        """A child or link died: stop taking calls at once; the monitor repairs and re-readies."""
        self._ready.clear()
        self._wake.set()

    def _require_ctrl(self) -> CtrlConnection:
        ctrl = self._ctrl
        if not self._ready.is_set() or ctrl is None or not ctrl.alive:
            raise CtrlError("baresip is not running (it is being restarted)")
        return ctrl

    def _call_command(self, call: PhoneCall, name: str, params: str = "",
                      before: list[tuple[str, str]] = (), after: list[tuple[str, str]] = ()
                      ) -> CommandResult:
        """`name` (accept, hangup, transfer, ...) for this call only: see _call_commands.
        `before` runs ahead of the `callfind` that picks the call, `after` behind the command
        (in the same write)."""
        results = self._call_commands(call, [(name, params)], before, after)
        return results[0]

    def _call_commands(self, call: PhoneCall, commands: list[tuple[str, str]],
                       before: list[tuple[str, str]] = (), after: list[tuple[str, str]] = ()
                       ) -> list[CommandResult]:
        """Commands for this call only: baresip 1.0's commands act on its current call, so
        `callfind <id>` makes it current in the same write (see CtrlConnection.batch). A call
        baresip no longer has gets no command at all, since they would then fall on whatever
        call is current."""
        ctrl = self._require_ctrl()
        before, after = list(before), list(after)
        with self._command_lock:
            if not call.baresip_id:  # dialled, not yet reported: the newest call is this one
                return ctrl.batch(commands, timeout=3)
            if not _found(ctrl.command("callfind", call.baresip_id, timeout=3), call.baresip_id):
                call.closed = True
                with self._calls_lock:
                    if self._turned_away.get(call.baresip_id) is call:
                        del self._turned_away[call.baresip_id]
                raise CtrlError(f"baresip has no call {call.baresip_id} any more")
            results = ctrl.batch([*before, ("callfind", call.baresip_id), *commands, *after],
                                 timeout=3)
            found = results[len(before)]
            if not _found(found, call.baresip_id):
                log.warning("call %s ended just before %s; baresip's current call got it",
                            call.baresip_id, commands[0][0])
            return results[len(before) + 1 : len(before) + 1 + len(commands)]

    def _hang_up_quietly(self, call: PhoneCall) -> None:
        try:
            self._call_command(call, "hangup")
        except CtrlError as exc:
            log.debug("hanging up %s: %s", call.baresip_id, exc)

    def _hang_up_turned_away(self) -> None:
        with self._calls_lock:
            refused = [c for c in self._turned_away.values() if c.refused and not c.closed]
        for other in refused:
            self._hang_up_quietly(other)

    def _forget(self, call: PhoneCall) -> None:
        with self._calls_lock:
            if call in self._unbound:
                self._unbound.remove(call)
            if call.baresip_id:
                self._calls.pop(call.baresip_id, None)

    def _on_message(self, message: object) -> None:
        """Runs on the ctrl reader thread: route, never block."""
        if isinstance(message, Disconnected):
            if not self._stopping.is_set():
                log.warning("ctrl_tcp: %s", message.reason)
            self._link_down()
            return
        assert isinstance(message, BaresipEvent)
        event = message
        line = line_user(event.account)
        if event.type == REGISTER_OK and line != baresip.main_user(self.settings.sip).lower():
            self.registered_lines.add(line)  # an agent's line (set_lines)
        elif event.type == REGISTER_OK:
            if not self._registered:
                log.info("registered with %s", event.account)
            self._registered = True
        elif event.type == REGISTER_FAIL and line in self._lines:
            log.warning("registration failed for line %s: %s", event.account, event.param)
            self.registered_lines.discard(line)
        elif event.type == REGISTER_FAIL:
            log.warning("registration failed for %s: %s", event.account, event.param)
            self._registered = False
        elif event.type == CALL_INCOMING and event.call_id:
            self._incoming(event)
            return
        if not event.call_id:
            return
        self._book_audio(event)
        call = self._route(event)
        if call is None:
            return
        if event.type == CALL_CLOSED:
            call.closed = True
        elif event.type == CALL_ESTABLISHED:
            call.established = True
        call.events.put(event)

    def _book_audio(self, event: BaresipEvent) -> None:
        """On the reader thread, so in baresip's order: a call's first SDP means its JACK ports
        come next (see call_ports.py); every call counts, ours or not, to keep that order."""
        if event.type == CALL_REMOTE_SDP and event.call_id not in self._audio_started:
            self._audio_started.add(event.call_id)
            self.bridge.expect(event.call_id)
        elif event.type == CALL_CLOSED:
            self._audio_started.discard(event.call_id)
            self.bridge.forget(event.call_id)

    def _incoming(self, event: BaresipEvent) -> None:
        """Runs on the reader thread: note the call, leave the checks to the gate thread."""
        call = PhoneCall(event.peer_uri, "incoming", event.call_id)
        call.called = line_user(event.account)  # the account (line) the INVITE was for
        with self._calls_lock:
            self._turned_away[event.call_id] = call
        self._gate.put(call)

    def _gate_loop(self) -> None:
        """Each incoming call in turn: its real source, the trust rules, then the handler."""
        while True:
            call = self._gate.get()
            if call is None:
                return
            try:
                self._admit(call)
            except Exception:  # one call's trouble must not stop the gate
                log.exception("checking the incoming call %s failed", call.baresip_id)

    def _admit(self, call: PhoneCall) -> None:
        call.source = self.sip_trace.source_of(call.baresip_id, timeout=SOURCE_WAIT)
        verdict = self.trust.check(call.source)
        handler = self.on_incoming
        if verdict.allowed and handler is None:
            verdict = Verdict(False, "nobody takes calls")
        if not verdict.allowed:
            self.trust.refusals.refused(call.source, verdict.reason, call.uri)
            call.refused = True
            if not call.closed:
                self._hang_up_quietly(call)
            return
        with self._calls_lock:
            if call.closed:  # the caller gave up while waiting for the gate
                self._turned_away.pop(call.baresip_id, None)
                return
            self._turned_away.pop(call.baresip_id, None)
            self._calls[call.baresip_id] = call
        # Off the reader thread: the handler talks to baresip and waits for events.
        threading.Thread(target=handler, args=(call,), name=f"inbound-{call.baresip_id}",
                         daemon=True).start()

    def _route(self, event: BaresipEvent) -> PhoneCall | None:
        with self._calls_lock:
            away = self._turned_away.get(event.call_id)
            if away is not None:
                if event.type == CALL_CLOSED:
                    away.closed = True
                    del self._turned_away[event.call_id]
                elif event.type == CALL_ESTABLISHED and away.refused:
                    # Answered by mistake (baresip's current call changed under a command).
                    log.warning("call %s was answered though refused; hanging it up",
                                event.call_id)
                    threading.Thread(target=self._hang_up_quietly, args=(away,),
                                     daemon=True).start()
                return None
            call = self._calls.get(event.call_id)
            if call is None and event.direction == "outgoing" and self._unbound:
                call = next((c for c in self._unbound if c.uri == event.peer_uri),
                            self._unbound[0])
                self._unbound.remove(call)
                call.baresip_id = event.call_id
                self._calls[event.call_id] = call
            return call

    def _fail_active(self, reason: str) -> None:
        with self._calls_lock:
            calls = [*self._calls.values(), *self._unbound]
            self._calls.clear()
            self._unbound.clear()
            self._turned_away.clear()
            self._audio_started.clear()
        for call in calls:
            call.closed = True
            call.events.put(LinkLost(reason))

    def held_calls(self) -> tuple[int, str]:
        """How many calls baresip holds, and its `listcalls` text."""
        listing = self._require_ctrl().command("listcalls", timeout=3).data
        match = _CALL_COUNT.search(listing)
        return (int(match.group(1)) if match else 0), listing

    def _clear_strays(self) -> None:
        """Compare baresip's calls with the daemon's; hang up those it does not know (a call
        whose events were missed, a half-open call nobody owns) once seen twice in a row.

        Events come before the reply on the one ctrl_tcp stream, so when `listcalls` answers,
        every call it counts has already been reported to _on_message.
        """
        ctrl = self._require_ctrl()
        held, listing = self.held_calls()
        with self._calls_lock:
            known = set(self._calls) | set(self._turned_away)
            unbound = len(self._unbound)
        strays_before, self._strays = self._strays, max(0, held - len(known) - unbound)
        if not self._strays:
            return
        log.warning("baresip holds %d call(s) the daemon does not know", self._strays)
        if not strays_before or unbound:
            return  # seen once, or an outgoing call not yet reported: look again next time
        ids = []
        with self._command_lock:
            for line in _LINE.findall(listing):
                _, stat = ctrl.batch([("line", line), ("callstat", "")], timeout=3)
                found = _CALLSTAT_ID.search(stat.data)
                if found and found.group(1) not in known:
                    ids.append(found.group(1))
        for call_id in ids:
            log.warning("hanging up call %s, which the daemon does not know", call_id)
            stray = PhoneCall("", "incoming", call_id)
            stray.refused = True
            with self._calls_lock:
                self._turned_away.setdefault(call_id, stray)
            self._hang_up_quietly(stray)

    def _open_bridge(self, timeout: float, during_start: bool = False) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                pid = self.jackd.pid
                if pid is None:
                    raise BridgeError("jackd is not running")
                self.bridge.open()
                self._bridge_jackd_pid = pid
                return
            except BridgeError as exc:
                # Say why as soon as it is clear (e.g. "server `x' already active"), not after
                # 15 s; a few tries first: the old jackd of a killed run may still be a zombie.
                if during_start and self.jackd.restarts >= JACKD_START_TRIES:
                    raise BridgeError(f"jackd could not start: {self.jackd.failure()}") from None
                if time.monotonic() > deadline or self._stopping.is_set():
                    if during_start:
                        raise BridgeError(f"jackd did not come up within {timeout:g} s: {exc}; "
                                          f"it said: {' | '.join(self.jackd.last_output)}")
                    raise
                time.sleep(0.1)

    def _monitor_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self._repair()
            except Exception:
                log.exception("switchboard repair failed; retrying")
                self._ready.clear()
            if self.ready and time.monotonic() - self._strays_checked >= STRAY_CHECK_EVERY:
                self._strays_checked = time.monotonic()
                try:
                    self._clear_strays()
                except CtrlError as exc:
                    log.debug("checking baresip's calls: %s", exc)
            # While something is down, look again soon: recovery waits for no timer.
            self._wake.wait(1.0 if self._ready.is_set() else 0.1)
            self._wake.clear()

    def _repair(self) -> None:
        errors = self.bridge.process_errors
        if errors != self._process_errors_seen:
            log.error("JACK process callback failed %d time(s): %s",
                      errors - self._process_errors_seen, self.bridge.last_process_error)
            self._process_errors_seen = errors
        # The bridge must be a client of the jackd that runs now, not of one that died.
        if not self.bridge.alive or self.jackd.pid != self._bridge_jackd_pid:
            self._ready.clear()
            # baresip's JACK clients died with that jackd: its calls have no audio left.
            # Fail them first (so the hang-up's CALL_CLOSED reads as no normal end), then hang
            # them up (a BYE) while baresip still can, before it is restarted.
            self._fail_active("the audio server (jackd) stopped during the call")
            self._hangup_all()
            self.bridge.close()
            if self.jackd.pid is None:
                return
            try:
                self._open_bridge(timeout=2)
            except BridgeError:
                return
            self.jackd.mark_healthy()
            log.info("JACK bridge reconnected; restarting baresip to rejoin the new server")
            self._close_ctrl()
            self.baresip.restart()
            return
        if self._ctrl is None or not self._ctrl.alive:
            self._ready.clear()
            pid = self.baresip.pid
            if pid is None or pid != self._ctrl_baresip_pid:
                self._fail_active("baresip stopped during the call")
            if pid is None:
                return
            # The same baresip: a dropped link, or baresip being killed right now (its port
            # may still take a connection for a moment). Give a kill time to show.
            if pid == self._ctrl_baresip_pid and self.baresip.exits_within(0.2):
                return
            try:
                ctrl = CtrlConnection.connect(baresip.CTRL_HOST, self.settings.sip.ctrl_port,
                                              self._on_message, timeout=1)
            except CtrlError as exc:
                log.debug("%s", exc)
                return
            if self.baresip.pid != pid:  # it died meanwhile: what answered is a new one
                ctrl.close()
                return
            if pid == self._ctrl_baresip_pid:
                log.warning("ctrl_tcp link to baresip reconnected")
                if not self._resync(ctrl):
                    ctrl.close()
                    return
            else:
                log.info("connected to baresip ctrl_tcp")
            if self.settings.sip.registrar:
                self._note_registrations(ctrl)
            self._ctrl = ctrl
            self._ctrl_baresip_pid = pid
            self.baresip.mark_healthy()
        if not self._ready.is_set():
            self._ready.set()
            log.info("switchboard ready")

    def _note_registrations(self, ctrl: CtrlConnection) -> None:
        """The registrations baresip made before the link was up (their REGISTER_OK went
        to no one): `reginfo` lists each account with OK once registered."""
        try:
            result = ctrl.command("reginfo", timeout=2)
        except CtrlError as exc:
            log.warning("cannot read baresip's registrations: %s", exc)
            return
        main = baresip.main_user(self.settings.sip).lower()
        for row in result.data.splitlines():
            row = re.sub(r"\x1b\[[0-9;]*m", "", row)  # "OK" is coloured
            found = re.search(r"(sips?:\S+@\S+)\s+OK\b", row)
            if not found:
                continue
            line = line_user(found.group(1))
            if line == main:
                self._registered = True
            elif line in self._lines:
                self.registered_lines.add(line)

    def _close_ctrl(self) -> None:
        ctrl, self._ctrl = self._ctrl, None
        self._ctrl_baresip_pid = None
        if ctrl:
            ctrl.close()

    def _hangup_all(self) -> None:
        """Hang up every call baresip holds: each far end gets a BYE (or a 486 if ringing)."""
        ctrl = self._ctrl
        if ctrl is None or not ctrl.alive:
            return
        try:
            for _ in range(MAX_HANGUPS):
                if not listed_calls(ctrl.command("listcalls", timeout=2).data):
                    return
                # baresip 1.0's hangup ends the current call: one command per call.
                ctrl.command("hangup", timeout=2)
            log.warning("baresip still holds calls after %d hang-ups", MAX_HANGUPS)
        except CtrlError as exc:
            log.warning("could not hang up baresip's calls: %s", exc)

    def _resync(self, ctrl: CtrlConnection) -> bool:
        """After a dropped link: keep the calls baresip still holds, fail the ones it ended."""
        try:
            listed = listed_calls(ctrl.command("listcalls", timeout=2).data)
        except CtrlError as exc:
            log.warning("cannot list baresip's calls after reconnecting: %s", exc)
            return False
        with self._calls_lock:
            ours = [*self._calls.values(), *self._unbound]
        gone = []
        for call in ours:
            state = next((st for st, peer in listed if peer == call.uri), None)
            if state is None:
                gone.append(call)
                continue
            listed.remove((state, call.uri))
            if state == "ESTABLISHED" and not call.established:
                # Answered while we were not listening: the event was sent to the other client.
                call.established = True
                call.events.put(BaresipEvent(CALL_ESTABLISHED, direction=call.direction,
                                             peer_uri=call.uri, call_id=call.baresip_id))
        for call in gone:
            self._forget(call)
            call.closed = True
            call.events.put(LinkLost("the call ended while the control link was down"))
        log.info("calls re-synchronised: %d kept, %d ended", len(ours) - len(gone), len(gone))
        return True

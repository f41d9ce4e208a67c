"""Faults against the real daemon (jackd, baresip, the test phone on loopback): children killed
with SIGKILL, a foreign client on the ctrl_tcp port, calls hung up before baresip goes."""

from __future__ import annotations

import logging
import time

import pytest

from sipassist.telephony import baresip
from sipassist.telephony.ctrl import CtrlConnection
from sipassist.telephony.events import CALL_CLOSED, CALL_ESTABLISHED
from sipassist.telephony.process import MAX_LINE

from .test_supervision import wait_until

pytestmark = [pytest.mark.telephony, pytest.mark.models]

LONG_MESSAGE = "This message is long enough to still be playing when something goes wrong. " * 3
RECOVERY_BOUND = 20.0  # generous for a loaded CI machine; the figure itself is printed


def recovery_time(board, kill) -> float:
    """Seconds from `kill()` until the switchboard is ready and healthy again."""
    assert board.wait_ready(30) and board.health_problem() is None
    killed_at = time.monotonic()
    kill()
    assert wait_until(lambda: not board.ready, 5), "the switchboard never noticed"
    assert board.wait_ready(RECOVERY_BOUND), f"not ready {RECOVERY_BOUND} s after the kill"
    assert wait_until(lambda: board.health_problem() is None, 5, step=0.05), \
        board.health_problem()
    return time.monotonic() - killed_at


def test_jackd_killed_five_times_recovers_each_time(start_daemon, phone, webhook):
    daemon = start_daemon(phone)
    board = daemon.daemon.switchboard
    times = [recovery_time(board, board.jackd.kill) for _ in range(5)]
    print(f"recovery after kill -9 jackd (5 in a row): {[round(t, 2) for t in times]} s")
    assert board.jackd.restarts == 5
    # baresip was restarted on purpose to join each new jackd: no crash, so no backoff.
    assert board.baresip.restarts == 0
    # Not 3, 10, 20, 38, 46 s: the last recovery is no slower than about the first.
    assert times[-1] < times[0] + 3, times
    status, body = daemon.request("POST", "/call", {"message": "Still working.",
                                                    "extension": "phone",
                                                    "callback_url": webhook.url})
    assert status == 200
    assert webhook.wait(1, timeout=60)[0]["status"] == "completed"


def test_baresip_killed_recovers(start_daemon, phone):
    board = start_daemon(phone).daemon.switchboard
    times = [recovery_time(board, board.baresip.kill) for _ in range(2)]
    print(f"recovery after kill -9 baresip: {[round(t, 2) for t in times]} s")
    assert board.baresip.restarts == 2


def test_jackd_killed_mid_call_hangs_up_with_a_bye(start_daemon, phone, webhook):
    daemon = start_daemon(phone)
    daemon.request("POST", "/call", {"message": LONG_MESSAGE, "extension": "phone",
                                     "callback_url": webhook.url})
    phone.wait_event(CALL_ESTABLISHED)
    assert daemon.daemon.active.latest(wait=10) is not None  # the message is playing
    killed_at = time.monotonic()
    daemon.daemon.switchboard.jackd.kill()
    # baresip still lived: the far phone is told (BYE), not left in a call with no audio.
    phone.wait_event(CALL_CLOSED, timeout=10)
    print(f"jackd killed mid-call: BYE at the phone after {time.monotonic() - killed_at:.2f} s")
    failed = webhook.wait(1)[0]
    assert failed["status"] == "failed" and "jackd" in failed["error"], failed


def test_daemon_stop_hangs_up_calls_first(start_daemon, phone, webhook, caplog):
    caplog.set_level(logging.INFO, "sipassist.baresip")
    daemon = start_daemon(phone)
    daemon.request("POST", "/call", {"message": LONG_MESSAGE, "extension": "phone",
                                     "callback_url": webhook.url})
    phone.wait_event(CALL_ESTABLISHED)
    session = daemon.daemon.active.latest(wait=10)
    assert session is not None
    time.sleep(3)  # noqa: baresip would print its per-second status line meanwhile
    daemon.stop()
    phone.wait_event(CALL_CLOSED, timeout=10)
    # baresip's output reached the log line by line, without its "[0:00:03] audio=..." status.
    lines = [r.getMessage() for r in caplog.records if r.name == "sipassist.baresip"]
    assert any("terminated" in line for line in lines), lines
    assert not any("audio=" in line for line in lines), [l[:200] for l in lines]
    assert all(len(line) <= MAX_LINE + 1 for line in lines)


def test_foreign_ctrl_connection_does_not_end_the_call(start_daemon, phone, webhook):
    """ctrl_tcp takes one client: a local process connecting drops the daemon's link."""
    daemon = start_daemon(phone)
    board = daemon.daemon.switchboard
    status, body = daemon.request("POST", "/call", {"message": LONG_MESSAGE,
                                                    "extension": "phone",
                                                    "callback_url": webhook.url})
    phone.wait_event(CALL_ESTABLISHED)
    assert wait_until(lambda: board.active_calls == 1, 5)
    foreign = CtrlConnection.connect(baresip.CTRL_HOST, daemon.settings.sip.ctrl_port,
                                     lambda message: None, timeout=5)
    try:
        assert wait_until(lambda: not foreign.alive, 10), "the daemon did not take its link back"
        assert board.wait_ready(5)
        assert board.active_calls == 1  # re-synchronised, not failed
        payload = webhook.wait(1, timeout=90)[0]
    finally:
        foreign.close()
    assert payload["call_id"] == body["call_id"]
    assert payload["status"] == "completed" and payload["message_played"], payload
    assert board.baresip.restarts == 0

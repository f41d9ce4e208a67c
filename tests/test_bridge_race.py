"""The JACK process callback under barge-in and hang-up: playback stopped from another thread
while the process thread plays must never raise there (JACK-Client drops a callback that
raised, and every call's audio would be dead while the bridge looked alive)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import jack
import numpy as np
import pytest

from sipassist.telephony.bridge import BridgeError, JackBridge

pytestmark = pytest.mark.telephony

RATE = 16000
PERIOD = 32  # 2 ms cycles: many more callbacks to race with than the daemon's 20 ms
STRESS_SECONDS = 3.0


@pytest.fixture
def jack_server():
    name = f"sipassist-race-{os.getpid()}"
    server = subprocess.Popen(["jackd", "--no-realtime", "-n", name, "-d", "dummy", "-r",
                               str(RATE), "-p", str(PERIOD)],
                              env={**os.environ, "JACK_NO_AUDIO_RESERVATION": "1"},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    yield name
    server.terminate()
    server.wait(10)


class FarEnd:
    """What baresip is to the bridge: one JACK client with an output and an input port."""

    def __init__(self, server: str) -> None:
        self.client = jack.Client("farend", no_start_server=True, servername=server)
        self.out = self.client.outports.register("output_1")
        self.inp = self.client.inports.register("input_1")
        self.loudest = 0.0  # of what the bridge sent since the last reset
        self.client.set_process_callback(self._process)

    def _process(self, frames: int) -> None:
        self.out.get_array()[:] = 0.0
        self.loudest = max(self.loudest, float(np.abs(self.inp.get_array()).max()))

    def close(self) -> None:
        self.client.deactivate()
        self.client.close()


def open_bridge(server: str) -> JackBridge:
    bridge = JackBridge(server, RATE, remote_client="farend", client_name="bridge")
    deadline = time.monotonic() + 10
    while True:
        try:
            bridge.open()
            return bridge
        except BridgeError:
            assert time.monotonic() < deadline, "jackd did not come up"
            time.sleep(0.05)


def test_stop_playback_racing_the_process_thread(jack_server: str) -> None:
    bridge = open_bridge(jack_server)
    far = FarEnd(jack_server)
    far.client.activate()
    audio = bridge.attach(timeout=5)
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # interleave the threads as often as the GIL allows
    stop = threading.Event()
    blip = np.full(7, 0.25, np.float32)  # shorter than a cycle: several finish in each one

    def player() -> None:
        while not stop.is_set():
            for _ in range(8):
                audio.play(blip)
            time.sleep(0)

    def barger() -> None:
        while not stop.is_set():
            audio.stop_playback()  # barge-in / hang-up, from another thread than play()

    threads = [threading.Thread(target=player), threading.Thread(target=barger)]
    try:
        cycles = bridge._cycles
        for thread in threads:
            thread.start()
        time.sleep(STRESS_SECONDS)  # the stress itself is timed: no event ends it
        stop.set()
        for thread in threads:
            thread.join(5)
        sys.setswitchinterval(switch)
        assert bridge._cycles - cycles > STRESS_SECONDS * RATE / PERIOD / 4, "JACK stalled"

        # Audio still flows: a tone plays to the end and reaches the far end.
        far.loudest = 0.0
        tone = (0.5 * np.sin(np.arange(RATE // 4) * 2 * np.pi * 440 / RATE)).astype(np.float32)
        item = audio.play(tone)
        assert item.done.wait(5), "playback never finished: the process callback is dead"
        assert not item.interrupted
        assert far.loudest > 0.3, far.loudest
        assert not audio.playing
        assert bridge.process_errors == 0, bridge.last_process_error
    finally:
        sys.setswitchinterval(switch)
        stop.set()
        bridge.detach(audio)
        far.close()
        bridge.close()

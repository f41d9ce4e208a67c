"""A test desk phone: a second baresip on loopback that plays a WAV and records what it hears.

Used by the tests and by `sipassist bench call`.
"""

from __future__ import annotations

import queue
import subprocess
import wave
from pathlib import Path

import numpy as np

from sipassist.telephony.ctrl import CtrlConnection
from sipassist.telephony.events import BaresipEvent

PHONE_RATE = 8000  # aufile's WAV must match the G.711 codec rate


def write_phone_wav(path: Path, samples: np.ndarray | None = None, rate: int = PHONE_RATE,
                    tail_seconds: float = 120.0) -> Path:
    """A WAV for the phone to 'say', padded with silence: aufile hangs up at end of file."""
    speech = np.zeros(0, dtype=np.float32) if samples is None else samples
    padded = np.concatenate([speech, np.zeros(int(tail_seconds * rate), dtype=np.float32)])
    pcm = (np.clip(padded, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())
    return path


class TestPhone:
    """baresip with aufile as microphone and sndfile recording; answers per `answermode`.

    With `echo`, the phone sends back all it hears instead (aubridge joins its loudspeaker to
    its microphone): the worst speakerphone there is, for echo tests. Only on calls it
    answers: on calls it places, baresip 1.0's aubridge sends nothing.
    """

    __test__ = False  # not a pytest class

    def __init__(self, directory: Path, sip_port: int, ctrl_port: int, rtp_ports: str,
                 answermode: str = "auto", user: str = "phone", echo: bool = False,
                 domain: str = "") -> None:
        self.directory = directory
        self.sip_port = sip_port
        self.ctrl_port = ctrl_port
        self.user = user
        # `domain` makes the phone claim another host in its From (it still sends from here).
        self.uri = f"sip:{user}@{domain or f'127.0.0.1:{sip_port}'}"
        self.events: queue.Queue[BaresipEvent] = queue.Queue()
        directory.mkdir(parents=True, exist_ok=True)
        self.wav = write_phone_wav(directory / "say.wav")
        self.recordings = directory / "recordings"
        self.recordings.mkdir(exist_ok=True)
        (directory / "config").write_text("\n".join([
            f"sip_listen 127.0.0.1:{sip_port}",
            "net_interface 127.0.0.1",
            "dns_server 127.0.0.1:53",
            f"rtp_ports {rtp_ports}",
            "module_path /usr/lib/baresip/modules",
            "module g711.so",
            # baresip 1.0 plays nothing when no player module is loaded, so aubridge only
            # when it is the player; aufile has no player of its own.
            *(["module aubridge.so", "audio_source aubridge,loop",
               "audio_player aubridge,loop"] if echo else
              ["module aufile.so", f"audio_source aufile,{self.wav}"]),
            "module sndfile.so",
            "module ctrl_tcp.so",
            "module_tmp account.so",
            "module_app menu.so",
            f"ctrl_tcp_listen 127.0.0.1:{ctrl_port}",
            f"snd_path {self.recordings}",
        ]) + "\n")
        (directory / "accounts").write_text(
            f"<{self.uri}>;regint=0;answermode={answermode}\n")
        self.log = open(directory / "baresip.log", "wb")
        self.process = subprocess.Popen(["baresip", "-f", str(directory)],
                                        stdin=subprocess.DEVNULL, stdout=self.log,
                                        stderr=subprocess.STDOUT)
        self.ctrl = CtrlConnection.connect("127.0.0.1", ctrl_port, self._on_message, timeout=10)

    def _on_message(self, message: object) -> None:
        if isinstance(message, BaresipEvent):
            self.events.put(message)

    def wait_event(self, event_type: str, timeout: float = 20.0) -> BaresipEvent:
        """The next event of `event_type`; earlier events of other types are passed over."""
        while True:
            try:
                event = self.events.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"test phone saw no {event_type} within {timeout} s")
            if event.type == event_type:
                return event

    def command(self, name: str, params: str = "") -> None:
        result = self.ctrl.command(name, params)
        assert result.ok, f"phone command {name} failed: {result.data}"

    def recording(self) -> Path:
        """The WAV of what the phone heard in its latest call."""
        heard = sorted(self.recordings.glob("dump-*-dec.wav"))
        assert heard, "the test phone recorded nothing"
        return heard[-1]

    def set_speech(self, samples: np.ndarray, rate: int) -> None:
        """What the phone says in the next call (at 8 kHz, padded)."""
        from sipassist.voice.resample import resample

        write_phone_wav(self.wav, resample(samples, rate, PHONE_RATE))

    def stop(self) -> None:
        self.ctrl.close()
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()

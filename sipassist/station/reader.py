"""StationReader: the one owner of the station's serial port.

It opens the port on first use. When the link breaks (unplugged: EOF or an I/O error) it closes
the port at once, so a USB adapter that comes back gets its old name, and opens it afresh on
the next request. If opening fails, later attempts wait 1, 2, 4 ... up to 30 s apart, so a
missing device is not hammered; requests in between fail at once and say why.

davis: each current() wakes the console and asks for one LOOP packet.
jsonl: a background thread reads lines as the station prints them; current() returns the
latest reading if it is younger than stale_seconds, waiting up to timeout_seconds for one.
"""

from __future__ import annotations

import errno
import logging
import math
import threading
import time

import serial

from .clock import Clock, SystemClock
from .davis import DavisDriver, reason
from .errors import StationError
from .jsonl import JsonlDriver, no_reading_error
from .reading import Reading
from .settings import StationSettings

log = logging.getLogger(__name__)


class _Listener:
    """One open connection to a jsonl station and the thread reading it."""

    def __init__(self, link: serial.SerialBase, driver: JsonlDriver) -> None:
        self.link = link
        self.driver = driver
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None
        self.latest: Reading | None = None
        self.latest_at = 0.0  # clock.monotonic() when `latest` arrived
        self.error: StationError | None = None


class StationReader:
    def __init__(self, settings: StationSettings, clock: Clock | None = None, *,
                 backoff_seconds: float = 1.0, max_backoff_seconds: float = 30.0) -> None:
        self.settings = settings
        self._clock = clock or SystemClock()
        self._where = f"the weather station on {settings.port}"
        self._min_backoff = backoff_seconds
        self._max_backoff = max_backoff_seconds
        self._cond = threading.Condition()  # guards everything below
        self._exchange = threading.Lock()  # one Davis request/answer at a time
        self._closed = False
        self._link: serial.SerialBase | None = None  # davis
        self._davis: DavisDriver | None = None
        self._listener: _Listener | None = None  # jsonl
        self._backoff = 0.0
        self._next_open = -math.inf
        self._open_error = ""

    # -- public ---------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        with self._cond:
            return self._link is not None or (
                self._listener is not None and self._listener.error is None)

    def current(self) -> Reading:
        """The station's current reading, or StationError saying what is wrong."""
        protocol = self.settings.protocol
        if protocol == "davis":
            return self._current_davis()
        if protocol == "jsonl":
            return self._current_jsonl()
        raise StationError("no weather station is configured")

    def start(self) -> None:
        """Open the port now rather than on the first request (jsonl: start listening, so
        the first request finds a reading waiting). Failures are logged, not raised."""
        if self.settings.protocol != "jsonl":
            return
        try:
            with self._cond:
                self._ensure_listener()
        except StationError as exc:
            log.warning("%s", exc)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            listener, self._listener = self._listener, None
            link, self._link, self._davis = self._link, None, None
            if listener is not None:
                listener.stop.set()
                _cancel_read(listener.link)
            if link is not None:
                _cancel_read(link)
            self._cond.notify_all()
        if listener is not None:
            if listener.thread is not None and listener.thread is not threading.current_thread():
                listener.thread.join(timeout=5)
            _close_quietly(listener.link)
        if link is not None:
            _close_quietly(link)

    def __enter__(self) -> StationReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the port -------------------------------------------------------------------------

    def _open(self) -> serial.SerialBase:
        """A freshly opened port (call with _cond held); StationError while backing off."""
        if self._closed:
            raise StationError("the weather station reader is closed")
        now = self._clock.monotonic()
        if now < self._next_open:
            wait = math.ceil(self._next_open - now)
            raise StationError(f"{self._where} is not connected ({self._open_error}); "
                               f"trying again in {wait} s")
        try:
            link = serial.serial_for_url(
                self.settings.port, baudrate=self.settings.baudrate,
                bytesize=serial.EIGHTBITS, parity=serial.PARITY_NONE,
                stopbits=serial.STOPBITS_ONE, timeout=self.settings.timeout_seconds,
                exclusive=True)
        except (serial.SerialException, OSError, ValueError) as exc:
            self._backoff = (min(self._max_backoff, self._backoff * 2) if self._backoff
                             else self._min_backoff)
            self._next_open = now + self._backoff
            self._open_error = _open_reason(exc)
            log.debug("cannot open %s: %s", self.settings.port, exc)
            raise StationError(f"{self._where} is not connected ({self._open_error})"
                               ) from exc
        if self._backoff or self._open_error:
            log.info("%s is connected again", self._where)
        self._backoff = 0.0
        self._next_open = -math.inf
        self._open_error = ""
        return link

    # -- davis ----------------------------------------------------------------------------

    def _current_davis(self) -> Reading:
        with self._exchange:
            with self._cond:
                if self._davis is None:
                    self._link = self._open()
                    self._davis = DavisDriver(self._link, port=self.settings.port,
                                              timeout=self.settings.timeout_seconds,
                                              clock=self._clock)
                driver, link = self._davis, self._link
            try:
                return driver.read()
            except StationError as exc:
                if exc.lost:
                    log.warning("%s", exc)
                    with self._cond:
                        if self._link is link:
                            self._link, self._davis = None, None
                    _close_quietly(link)
                raise

    # -- jsonl ----------------------------------------------------------------------------

    def _ensure_listener(self) -> _Listener:
        if self._listener is None:
            link = self._open()
            driver = JsonlDriver(link, port=self.settings.port,
                                 timeout=self.settings.timeout_seconds, clock=self._clock)
            listener = _Listener(link, driver)
            listener.thread = threading.Thread(target=self._listen, args=(listener,),
                                               name="station-jsonl", daemon=True)
            self._listener = listener
            listener.thread.start()
        return self._listener

    def _listen(self, listener: _Listener) -> None:
        wait = self.settings.timeout_seconds
        try:
            while not listener.stop.is_set():
                reading = listener.driver.poll(wait)
                if reading is not None:
                    with self._cond:
                        listener.latest = reading
                        listener.latest_at = self._clock.monotonic()
                        self._cond.notify_all()
            return
        except StationError as exc:
            error = exc
        except Exception as exc:  # noqa: BLE001 - reported to the caller, never lost
            log.exception("reading %s failed", self._where)
            error = StationError(f"{self._where} failed ({exc})", lost=True)
        with self._cond:
            if listener.stop.is_set():
                return  # closing: the error is ours
            log.warning("%s", error)
            _close_quietly(listener.link)  # at once, so the device keeps its name on re-plug
            listener.error = error
            self._cond.notify_all()

    def _current_jsonl(self) -> Reading:
        timeout = self.settings.timeout_seconds
        with self._cond:
            listener = self._ensure_listener()
            deadline = time.monotonic() + timeout
            while True:
                if self._closed:
                    raise StationError("the weather station reader is closed")
                if listener.error is not None:
                    if self._listener is listener:
                        self._listener = None  # the next request opens the port afresh
                    raise listener.error
                age = self._clock.monotonic() - listener.latest_at
                if listener.latest is not None and age <= self.settings.stale_seconds:
                    return listener.latest
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    if listener.latest is not None:
                        raise StationError(f"{self._where} has sent no reading for "
                                           f"{age:.0f} s")
                    raise no_reading_error(self._where, timeout,
                                           listener.driver.garbage_lines > 0)
                self._cond.wait(remaining)


def _open_reason(exc: BaseException) -> str:
    code = getattr(exc, "errno", None)
    if code in (errno.ENOENT, errno.ENODEV, errno.ENXIO):
        return "no such device; is it plugged in?"
    if code in (errno.EACCES, errno.EPERM):
        return "permission denied; is the service user in the dialout group?"
    if code in (errno.EBUSY, errno.EAGAIN, errno.EWOULDBLOCK):
        return "in use by another program"
    return reason(exc)


def _cancel_read(link: serial.SerialBase) -> None:
    cancel = getattr(link, "cancel_read", None)
    if cancel is not None:
        try:
            cancel()
        except (serial.SerialException, OSError):
            pass


def _close_quietly(link: serial.SerialBase) -> None:
    try:
        link.close()
    except (serial.SerialException, OSError):
        pass

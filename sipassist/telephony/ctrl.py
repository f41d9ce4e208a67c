"""baresip's ctrl_tcp protocol: netstring-framed JSON commands, replies and events.

ctrl_tcp takes one connection at a time. One reader thread per connection turns frames into
BaresipEvent / CommandResult objects; commands wait for the reply carrying their token.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout

from .events import BaresipEvent, CommandResult, Disconnected

log = logging.getLogger(__name__)

MAX_FRAME = 1 << 20  # a frame larger than this means the stream is corrupt


class CtrlError(RuntimeError):
    """A command could not be carried out over ctrl_tcp."""


def encode_frame(message: dict) -> bytes:
    body = json.dumps(message, separators=(",", ":")).encode()
    return b"%d:%s," % (len(body), body)


class NetstringDecoder:
    """Incremental netstring decoder: feed bytes, get complete JSON objects."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[dict]:
        self._buffer += data
        frames = []
        while True:
            head, colon, rest = self._buffer.partition(b":")
            if not colon:
                if len(head) > 10:
                    raise ValueError(f"bad netstring length prefix {head[:20]!r}")
                return frames
            if not head.isdigit() or int(head) > MAX_FRAME:
                raise ValueError(f"bad netstring length prefix {head[:20]!r}")
            size = int(head)
            if len(rest) < size + 1:
                return frames
            if rest[size : size + 1] != b",":
                raise ValueError("netstring not terminated by ','")
            frames.append(json.loads(rest[:size]))
            self._buffer = rest[size + 1 :]


# One line of `listcalls`: "> [line 1]  0:00:02  ESTABLISHED             sip:c@127.0.0.1:5070"
_LISTED_CALL = re.compile(r"^[> ]\s*\[line \d+\]\s+\S+\s+(\S+)\s+(\S+)\s*$")


def listed_calls(data: str) -> list[tuple[str, str]]:
    """(state, peer URI) of each call in baresip 1.0's `listcalls` reply (it shows no ids)."""
    return [(m.group(1), m.group(2)) for line in data.splitlines()
            if (m := _LISTED_CALL.match(line))]


class CtrlConnection:
    """One live ctrl_tcp connection.

    `on_message` receives BaresipEvent objects and, once, a Disconnected; it runs on the reader
    thread, so it must hand work off rather than block.
    """

    def __init__(self, sock: socket.socket, on_message: Callable[[object], None]) -> None:
        self._sock = sock
        self._on_message = on_message
        self._send_lock = threading.Lock()
        self._pending: dict[str, Future[CommandResult]] = {}
        self._tokens = itertools.count(1)
        self._closed = threading.Event()
        self._closing = False  # closed by us: no Disconnected to report
        self.last_frame_at = time.monotonic()
        self._reader = threading.Thread(target=self._read_loop, name="ctrl-reader", daemon=True)
        self._reader.start()

    @classmethod
    def connect(
        cls, host: str, port: int, on_message: Callable[[object], None], timeout: float
    ) -> CtrlConnection:
        """Connect, retrying until `timeout` while baresip is still starting up."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                sock = socket.create_connection((host, port), timeout=2)
                sock.settimeout(None)
                return cls(sock, on_message)
            except OSError as exc:
                if time.monotonic() > deadline:
                    raise CtrlError(f"cannot reach baresip ctrl_tcp at {host}:{port}: {exc}")
                time.sleep(0.1)

    @property
    def alive(self) -> bool:
        return not self._closed.is_set()

    def command(self, name: str, params: str = "", timeout: float = 5.0) -> CommandResult:
        if "\n" in params or "\r" in params:
            raise CtrlError("command parameters must be one line")
        token = str(next(self._tokens))
        future: Future[CommandResult] = Future()
        self._pending[token] = future
        frame = encode_frame({"command": name, "params": params, "token": token})
        try:
            if not self.alive:
                raise CtrlError("ctrl_tcp connection is closed")
            with self._send_lock:
                self._sock.sendall(frame)
            return future.result(timeout)
        except FutureTimeout:
            raise CtrlError(f"baresip did not answer {name!r} within {timeout:g} s") from None
        except OSError as exc:
            raise CtrlError(f"ctrl_tcp send failed: {exc}") from None
        finally:
            self._pending.pop(token, None)

    def batch(self, commands: list[tuple[str, str]], timeout: float = 5.0,
              on_reply: Callable[[int, CommandResult], None] | None = None
              ) -> list[CommandResult]:
        """Several commands in one write. ctrl_tcp runs all frames of one read before baresip
        handles any SIP message, so `callfind <id>` and the command after it act on that
        call with no INVITE slipping in between (which would make it baresip's current call).
        `on_reply(index, result)` runs on the reader thread as each reply comes, before any
        event baresip sent after it is handled."""
        if any("\n" in p or "\r" in p for _, p in commands):
            raise CtrlError("command parameters must be one line")
        tokens = [str(next(self._tokens)) for _ in commands]
        futures: list[Future[CommandResult]] = []
        for index, token in enumerate(tokens):
            futures.append(Future())
            if on_reply is not None:
                futures[-1].add_done_callback(
                    lambda done, i=index: done.exception() or on_reply(i, done.result()))
            self._pending[token] = futures[-1]
        frames = b"".join(encode_frame({"command": name, "params": params, "token": token})
                          for (name, params), token in zip(commands, tokens))
        deadline = time.monotonic() + timeout
        try:
            if not self.alive:
                raise CtrlError("ctrl_tcp connection is closed")
            with self._send_lock:
                self._sock.sendall(frames)
            return [f.result(max(0.0, deadline - time.monotonic())) for f in futures]
        except FutureTimeout:
            names = ", ".join(name for name, _ in commands)
            raise CtrlError(f"baresip did not answer {names} within {timeout:g} s") from None
        except OSError as exc:
            raise CtrlError(f"ctrl_tcp send failed: {exc}") from None
        finally:
            for token in tokens:
                self._pending.pop(token, None)

    def close(self) -> None:
        self._closing = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        self._reader.join(timeout=2)

    def _read_loop(self) -> None:
        decoder = NetstringDecoder()
        reason = "connection closed by baresip"
        try:
            while True:
                data = self._sock.recv(65536)
                if not data:
                    break
                self.last_frame_at = time.monotonic()
                for frame in decoder.feed(data):
                    self._dispatch(frame)
        except (OSError, ValueError) as exc:
            reason = f"ctrl_tcp read failed: {exc}"
        finally:
            self._closed.set()
            for future in list(self._pending.values()):
                if not future.done():
                    future.set_exception(CtrlError(reason))
            if not self._closing:
                self._on_message(Disconnected(reason))

    def _dispatch(self, frame: dict) -> None:
        if frame.get("response"):
            future = self._pending.get(str(frame.get("token")))
            if future and not future.done():
                future.set_result(CommandResult.from_frame(frame))
        elif frame.get("event"):
            try:
                self._on_message(BaresipEvent.from_frame(frame))
            except Exception:  # a handler bug must not kill the reader
                log.exception("event handler failed for %s", frame.get("type"))

"""Which of baresip's JACK ports belong to which call, told from the order things happen.

baresip 1.0's jack module names its clients only `baresip`, `baresip-01`, ... (JACK's lowest
free name), never after a call, so a port cannot say whose it is. What was measured instead
(three calls at once on loopback; baresip is single-threaded):

- A call's audio starts right after baresip reports the call's first CALL_REMOTE_SDP (the
  offer at `accept`, the answer to a dialled call): it registers one output port (what the far
  end says) and then one input port (what we send), back to back, before it reports anything
  else. So the n-th pair of ports to appear is the n-th call whose audio started, in the order
  of the ctrl_tcp stream; the switchboard calls `expect` in that order.
- A call put on hold and resumed (baresip's `accept` holds the call before the answered one)
  gets a new player: its output port goes and another one comes straight after, the call's
  input port staying. That one port is given back to the call (`Moved`), not to a new call.
- A call that ends loses both ports; it is forgotten when it is detached.

Pure bookkeeping (no JACK calls): the bridge feeds it the registrations in JACK's order.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

OUT, IN = 0, 1  # index of a call's remote output port (far end's voice) and input port


@dataclass(frozen=True)
class Moved:
    """A call's port came back under a new name: connect it again."""

    call_id: str
    kind: int  # OUT or IN
    old: str
    new: str


class PortBook:
    def __init__(self) -> None:
        self._expected: deque[str] = deque()  # calls whose audio started, ports not yet seen
        self._free: tuple[list[str], list[str]] = ([], [])  # registered, given to no call
        self._ports: dict[str, list[str]] = {}  # call id -> [output name, input name]
        self._gone: dict[str, set[int]] = {}  # call id -> its ports unregistered since
        # The latest port event, when it was an owned port going: (call id, OUT or IN).
        self._last_gone: tuple[str, int] | None = None

    def expect(self, call_id: str) -> None:
        """`call_id`'s audio is starting: the next pair of new ports is its."""
        if call_id not in self._ports and call_id not in self._expected:
            self._expected.append(call_id)
            self._assign()

    def registered(self, name: str, is_output: bool) -> Moved | None:
        kind = OUT if is_output else IN
        last, self._last_gone = self._last_gone, None
        if last is not None and last[1] == kind:
            call_id = last[0]
            gone = self._gone.get(call_id, set())
            if gone == {kind}:  # its other port stayed: the same call's audio, re-created
                gone.discard(kind)
                old, self._ports[call_id][kind] = self._ports[call_id][kind], name
                return Moved(call_id, kind, old, name)
        self._free[kind].append(name)
        self._assign()
        return None

    def unregistered(self, name: str) -> None:
        self._last_gone = None
        for free in self._free:
            if name in free:
                free.remove(name)
                return
        for call_id, ports in self._ports.items():
            if name in ports and ports.index(name) not in self._gone.setdefault(call_id, set()):
                kind = ports.index(name)
                self._gone[call_id].add(kind)
                self._last_gone = (call_id, kind)
                return

    def ports_of(self, call_id: str) -> tuple[str, str] | None:
        ports = self._ports.get(call_id)
        if ports is None or self._gone.get(call_id):
            return None
        return ports[OUT], ports[IN]

    def take_any(self) -> tuple[str, str] | None:
        """The oldest free pair, for a caller that knows no call id (one call at a time)."""
        if self._free[OUT] and self._free[IN]:
            return self._free[OUT].pop(0), self._free[IN].pop(0)
        return None

    def forget(self, call_id: str) -> None:
        """The call is over (or its ports never came): stop waiting for or tracking them."""
        if call_id in self._expected:
            self._expected.remove(call_id)
        self._ports.pop(call_id, None)
        self._gone.pop(call_id, None)
        if self._last_gone and self._last_gone[0] == call_id:
            self._last_gone = None

    def reset(self) -> None:
        """A new JACK server: every port and expectation is gone."""
        self.__init__()

    def _assign(self) -> None:
        while self._expected and self._free[OUT] and self._free[IN]:
            call_id = self._expected.popleft()
            self._ports[call_id] = [self._free[OUT].pop(0), self._free[IN].pop(0)]
            self._gone[call_id] = set()

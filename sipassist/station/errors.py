"""StationError: what went wrong with the weather station, worded to be read out or logged."""

from __future__ import annotations

from sipassist.tools.base import ToolError


class StationError(ToolError):
    """The station could not give a reading. `lost` means the serial link itself is gone
    (unplugged, EOF, I/O error): the reader closes it and opens the port afresh next time."""

    def __init__(self, message: str, *, lost: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.lost = lost

    def __str__(self) -> str:
        return self.message

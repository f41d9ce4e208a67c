"""sipassist.station: weather-station drivers over pyserial, one module per protocol.

StationReader(settings).current() -> Reading is all most callers need; it raises StationError
worded for a person ("the weather station on /dev/ttyUSB0 is not answering").
"""

from .errors import StationError
from .reader import StationReader
from .reading import Reading, conditions, feels_like_f
from .settings import StationSettings

__all__ = ["Reading", "StationError", "StationReader", "StationSettings", "conditions",
           "feels_like_f"]

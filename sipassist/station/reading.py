"""One observation from the weather station, and what can honestly be said about it.

Everything here is pure: formulas from the US National Weather Service (heat index, wind chill),
the Magnus formula for dew point, and a plain-words summary built only from what the station
measures. A station has no eyes: it cannot tell sun from cloud, so "sunny" and "cloudy" are
never said.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, kw_only=True)
class Reading:
    temp_f: float  # outside air temperature
    humidity: float | None = None  # outside relative humidity, %
    wind_mph: float | None = None  # current wind speed
    wind_dir_deg: float | None = None  # where the wind comes FROM, 0 = north, clockwise
    rain_rate_in_hr: float | None = None  # None = no rain gauge
    barometer_inhg: float | None = None  # sea-level pressure
    dew_point_f: float | None = None  # derived from temp_f and humidity when absent
    observed_at: datetime  # timezone-aware

    def __post_init__(self) -> None:
        if self.observed_at.tzinfo is None or self.observed_at.utcoffset() is None:
            raise ValueError("Reading.observed_at must be timezone-aware")
        if self.dew_point_f is None and self.humidity is not None and self.humidity > 0:
            object.__setattr__(self, "dew_point_f", dew_point_f(self.temp_f, self.humidity))


# -- formulas ---------------------------------------------------------------------------------

def heat_index_f(temp_f: float, rh: float) -> float:
    """NWS heat index (what hot air feels like given humidity), as the NWS computes it.

    The simple Steadman formula first; if its average with the temperature is 80 F or more
    (in practice: from about 80 F up), the Rothfusz regression with the NWS's two adjustments
    (dry heat below 13 % RH at 80-112 F, muggy air above 85 % RH at 80-87 F).
    Ref: https://www.wpc.ncep.noaa.gov/html/heatindex_equation.shtml
    """
    t, r = float(temp_f), float(rh)
    simple = 0.5 * (t + 61.0 + (t - 68.0) * 1.2 + r * 0.094)
    if (simple + t) / 2 < 80.0:
        return simple
    hi = (-42.379 + 2.04901523 * t + 10.14333127 * r - 0.22475541 * t * r
          - 0.00683783 * t * t - 0.05481717 * r * r + 0.00122874 * t * t * r
          + 0.00085282 * t * r * r - 0.00000199 * t * t * r * r)
    if r < 13 and 80 <= t <= 112:
        hi -= ((13 - r) / 4) * math.sqrt((17 - abs(t - 95)) / 17)
    elif r > 85 and 80 <= t <= 87:
        hi += ((r - 85) / 10) * ((87 - t) / 5)
    return hi


def wind_chill_f(temp_f: float, wind_mph: float) -> float:
    """NWS wind chill (2001 formula); defined only at 50 F or below with wind of 3 mph or more,
    elsewhere the air temperature itself."""
    t, v = float(temp_f), float(wind_mph)
    if t > 50.0 or v < 3.0:
        return t
    v16 = v ** 0.16
    return 35.74 + 0.6215 * t - 35.75 * v16 + 0.4275 * t * v16


def dew_point_f(temp_f: float, rh: float) -> float:
    """Dew point by the Magnus formula (Sonntag 1990 constants over water, good to about
    0.4 F from -40 to 120 F). `rh` in percent, above 0; values over 100 count as 100."""
    if rh <= 0:
        raise ValueError("relative humidity must be above 0 %")
    b, c = 17.62, 243.12  # c in degrees C
    t_c = (float(temp_f) - 32.0) / 1.8
    gamma = math.log(min(float(rh), 100.0) / 100.0) + b * t_c / (c + t_c)
    return c * gamma / (b - gamma) * 1.8 + 32.0


def feels_like_f(reading: Reading) -> float:
    """Wind chill when it is cold and windy, heat index when it is hot, else the temperature.

    The heat index is used from 80 F up only: below that the NWS's simple formula would move
    mild readings by a degree or two, which is not what anyone means by "feels like".
    """
    t = reading.temp_f
    if t <= 50.0 and reading.wind_mph is not None and reading.wind_mph >= 3.0:
        return wind_chill_f(t, reading.wind_mph)
    if t >= 80.0 and reading.humidity is not None:
        return heat_index_f(t, reading.humidity)
    return t


# -- plain words ------------------------------------------------------------------------------

# Rain rate, inches per hour (a tipping bucket's rate, so the lightest rain shows as drizzle):
DRIZZLE_MAX_IN_HR = 0.04  # below ~1 mm/h: drizzle (AMS: drizzle rarely exceeds 1 mm/h)
HEAVY_RAIN_IN_HR = 0.30  # NWS: heavy rain is more than 0.30 in/h; 0.10-0.30 moderate
# Fog: saturated air (RH >= 97 %, or air within 2 F of its dew point) that is not being
# stirred up: under 5 mph. A station cannot see fog; this is what fog nearly always looks like
# to its sensors, and "foggy" is said only then.
FOG_MIN_HUMIDITY = 97.0
FOG_MAX_SPREAD_F = 2.0
FOG_MAX_WIND_MPH = 5.0
WINDY_MPH = 20.0  # NWS forecast wording: "windy" at sustained 20-30 mph
BREEZY_MPH = 10.0  # "breezy" at 10-20 mph
MUGGY_DEW_POINT_F = 65.0  # dew points of 65 F and up feel sticky to most people
CALM_MPH = 5.0


def conditions(reading: Reading) -> str:
    """One word (or two) for the conditions, derived only from what is measured.

    In order of what matters most: "heavy rain", "rainy", "drizzly" (rain rate); "windy"
    (>= 20 mph); "foggy" (saturated, calm air); "humid" (dew point >= 65 F); "breezy"
    (10-20 mph); then the neutral "calm" (wind measured under 10 mph) or "dry" (rain gauge
    reads zero but no wind sensor). "unknown" when the station measures none of these.
    Never "sunny", "clear" or "cloudy": the station cannot see the sky.
    """
    rain = reading.rain_rate_in_hr
    wind = reading.wind_mph
    if rain is not None and rain > 0:
        if rain >= HEAVY_RAIN_IN_HR:
            return "heavy rain"
        return "drizzly" if rain < DRIZZLE_MAX_IN_HR else "rainy"
    if wind is not None and wind >= WINDY_MPH:
        return "windy"
    # No anemometer: nothing says the air is moving, so saturation alone decides.
    still = wind is None or wind < FOG_MAX_WIND_MPH
    saturated = (reading.humidity is not None and reading.humidity >= FOG_MIN_HUMIDITY) or (
        reading.dew_point_f is not None
        and reading.temp_f - reading.dew_point_f <= FOG_MAX_SPREAD_F)
    if still and saturated:
        return "foggy"
    if reading.dew_point_f is not None and reading.dew_point_f >= MUGGY_DEW_POINT_F:
        return "humid"
    if wind is not None:
        return "breezy" if wind >= BREEZY_MPH else "calm"
    if rain is not None:
        return "dry"
    return "unknown"

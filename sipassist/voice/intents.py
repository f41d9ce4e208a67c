"""Plain intents recognised from a transcript with rules, so common questions skip the LLM.

Each rule maps to a tool call with arguments; anything not recognised goes to the LLM. Facts
(time, weather, arithmetic) always come from tools.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .choice import words

GOODBYE = "goodbye"
TOOL = "tool"


@dataclass(frozen=True)
class Intent:
    kind: str  # TOOL or GOODBYE
    tool: str = ""
    args: dict[str, Any] = field(default_factory=dict)


# Places people ask the time in, to IANA zones (the caller's own zone is the default).
PLACES = {
    "new york": "America/New_York", "boston": "America/New_York", "miami": "America/New_York",
    "washington": "America/New_York", "chicago": "America/Chicago", "dallas": "America/Chicago",
    "houston": "America/Chicago", "denver": "America/Denver", "phoenix": "America/Phoenix",
    "los angeles": "America/Los_Angeles", "san francisco": "America/Los_Angeles",
    "seattle": "America/Los_Angeles", "anchorage": "America/Anchorage",
    "honolulu": "Pacific/Honolulu", "hawaii": "Pacific/Honolulu", "toronto": "America/Toronto",
    "vancouver": "America/Vancouver", "mexico city": "America/Mexico_City",
    "london": "Europe/London", "dublin": "Europe/Dublin", "paris": "Europe/Paris",
    "berlin": "Europe/Berlin", "madrid": "Europe/Madrid", "rome": "Europe/Rome",
    "amsterdam": "Europe/Amsterdam", "stockholm": "Europe/Stockholm", "moscow": "Europe/Moscow",
    "istanbul": "Europe/Istanbul", "dubai": "Asia/Dubai", "india": "Asia/Kolkata",
    "mumbai": "Asia/Kolkata", "delhi": "Asia/Kolkata", "singapore": "Asia/Singapore",
    "hong kong": "Asia/Hong_Kong", "beijing": "Asia/Shanghai", "shanghai": "Asia/Shanghai",
    "tokyo": "Asia/Tokyo", "seoul": "Asia/Seoul", "sydney": "Australia/Sydney",
    "melbourne": "Australia/Melbourne", "auckland": "Pacific/Auckland", "utc": "UTC",
}

_UNITS = {"zero": 0, "one": 1, "a": 1, "an": 1, "two": 2, "three": 3, "four": 4, "five": 5,
          "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
          "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17,
          "eighteen": 18, "nineteen": 19, "couple": 2, "few": 3}
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
         "eighty": 80, "ninety": 90}
_SECONDS = {"second": 1, "seconds": 1, "sec": 1, "secs": 1, "minute": 60, "minutes": 60,
            "min": 60, "mins": 60, "hour": 3600, "hours": 3600}


def _number(tokens: list[str], i: int) -> tuple[float, int] | None:
    """A number starting at tokens[i] (digits or words); returns (value, tokens used)."""
    token = tokens[i]
    if re.fullmatch(r"\d+(\.\d+)?", token):
        return float(token), 1
    if token in _TENS:
        if i + 1 < len(tokens) and tokens[i + 1] in _UNITS and _UNITS[tokens[i + 1]] < 10:
            return _TENS[token] + _UNITS[tokens[i + 1]], 2
        return _TENS[token], 1
    if token in _UNITS:
        return _UNITS[token], 1
    if token == "half":
        return 0.5, 1
    return None


def has_number(text: str) -> bool:
    """Whether the text holds a number, in digits or words ("a" and "an" do not count)."""
    tokens = [t for t in re.findall(r"\d+(?:\.\d+)?|[a-z]+", text.lower()) if t not in ("a", "an")]
    return any(_number(tokens, i) for i in range(len(tokens)))


def parse_duration(text: str) -> int | None:
    """Seconds in "five minutes", "1 hour and 30 minutes", "half an hour", "90 seconds"."""
    tokens = [t for t in re.findall(r"\d+(?:\.\d+)?|[a-z]+", text.lower()) if t != "and"]
    total, found, i = 0.0, False, 0
    while i < len(tokens):
        parsed = _number(tokens, i)
        if parsed:
            value, used = parsed
            j = i + used
            if j < len(tokens) and tokens[j] in ("a", "an") and value == 0.5:
                j += 1  # "half an hour"
            if j < len(tokens) and tokens[j] in _SECONDS:
                total += value * _SECONDS[tokens[j]]
                found = True
                i = j + 1
                continue
        i += 1
    return int(round(total)) if found and total > 0 else None


def _arithmetic(text: str) -> str | None:
    """The arithmetic part of "what's 25 times 4 plus 10?", or None."""
    # A pause mid-question comes back as "25 times 4? Plus 10.": only a decimal point stays.
    lowered = re.sub(r"[?!]|\.(?!\d)", " ", text.lower().replace(",", ""))
    if not re.search(r"\d", lowered):
        return None
    if not re.search(r"\b(plus|minus|times|divided|multiplied|over|squared|cubed|power)\b|"
                     r"[-+*/x×÷^]", lowered):
        return None
    match = re.search(r"[\d(].*", lowered)
    if not match:
        return None
    expression = re.sub(r"[?.!]+$", "", match.group(0)).strip()
    expression = re.sub(r"\b(equals?|is|please)\b.*$", "", expression).strip()
    return expression or None


def place_timezone(text: str) -> str | None:
    lowered = " ".join(words(text))
    for place, zone in PLACES.items():
        if re.search(rf"\b{re.escape(place)}\b", lowered):
            return zone
    return None


def recognise(text: str) -> Intent | None:
    """The plain intent of an utterance, or None (then the LLM answers)."""
    said = words(text)
    joined = " ".join(said)
    if not said:
        return None
    if re.search(r"\b(goodbye|good bye|bye|hang up|that's all|that is all|nothing else)\b",
                 joined) and len(said) <= 8:
        return Intent(GOODBYE)
    if re.search(r"\b(remind me|reminder)\b", joined):
        duration = parse_duration(joined)
        if duration:
            what = re.search(r"\bto (.+)$", joined)
            message = f"This is your reminder to {what.group(1)}." if what else "This is your reminder."
            return Intent(TOOL, "SET_TIMER", {"duration": duration, "message": message})
    if re.search(r"\btimer\b", joined):
        duration = parse_duration(joined)
        if duration:
            return Intent(TOOL, "SET_TIMER", {"duration": duration})
    expression = _arithmetic(text)
    if expression and re.search(r"\b(what|what's|whats|calculate|how much|compute)\b|\d",
                                joined):
        return Intent(TOOL, "CALC", {"expression": expression})
    if re.search(r"\b(weather|temperature|how (hot|cold|warm)|raining|rain|humid|windy|wind)\b",
                 joined):
        return Intent(TOOL, "WEATHER", {})
    if re.search(r"\bwhat time\b|\bthe time\b|\btime is it\b", joined):
        args: dict[str, Any] = {"format": "time"}
        if zone := place_timezone(text):
            args["timezone"] = zone
        return Intent(TOOL, "DATETIME", args)
    if re.search(r"\b(what day|what's the date|whats the date|what is the date|today's date|"
                 r"what date)\b", joined):
        return Intent(TOOL, "DATETIME", {"format": "date"})
    return None

"""Plain intents recognised from a transcript with rules, so common questions skip the LLM.

Each rule maps to a tool call with arguments; anything not recognised goes to the LLM. Facts
(time, weather, arithmetic) always come from tools.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Any

from ..tools.calc import normalise
from ..tools.timer import reminder_message
from .choice import words
from .numbers import has_number, parse_duration

__all__ = ["GOODBYE", "TOOL", "Intent", "arithmetic", "has_number", "parse_duration",
           "place_timezone", "recognise"]

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

# What a sum is made of once calc.normalise has turned words into symbols.
_MATH_TOKEN = re.compile(r"sqrt|cbrt|\*\*|\d+(?:\.\d+)?|[-+*/%()]")
_TOKEN = re.compile(r"sqrt|cbrt|\*\*|\d+(?:\.\d+)?|[-+*/%()]|[a-z']+|\S")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_BINARY = ("+", "*", "/", "%", "**", ")")  # cannot start a sum ("+ 8" parses in Python)


def arithmetic(text: str) -> str | None:
    """The sum in an utterance, in symbols: "what's 15 percent of two hundred?" ->
    "(15 / 100 * 200)". The longest stretch of numbers and operators that parses and holds
    an operation; None when there is none ("I'm over 18", "it's minus 5 outside")."""
    # A pause mid-question comes back as "25 times 4? Plus 10.": only a decimal point stays.
    lowered = re.sub(r"[?!;:]|,(?!\d{3}\b)|\.(?!\d)", " ", text.lower())
    found = _TOKEN.findall(normalise(lowered))
    best: list[str] = []
    run: list[str] = []
    numbers = sum(1 for token in found if _NUMBER.fullmatch(token))
    for token in [*found, ""]:
        if token and _MATH_TOKEN.fullmatch(token):
            run.append(token)
            continue
        # An operator with a word for its operand ("what is a plus 8 plus 8") does not parse:
        # the number was misheard, and 8 + 8 would be a confident wrong answer.
        if len(run) > len(best) and run[0] not in _BINARY and _is_operation(" ".join(run)):
            best = run
        run = []
    # Every number must be in the sum: "what's 20 vibes times 4 plus 10" is a misheard
    # question, not 4 + 10 (the confidence check asks again).
    if sum(1 for token in best if _NUMBER.fullmatch(token)) != numbers:
        return None
    expression = " ".join(best)
    return re.sub(r"(?<=[(t]) (?=\()|(?<=\() | (?=\))", "", expression) or None


def _is_operation(expression: str) -> bool:
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError:
        return False
    return isinstance(tree.body, (ast.BinOp, ast.Call))


_TIMER = re.compile(r"\b(timer|countdown|count down|wake me|call me back|call me in|ring me|"
                    r"set a time (for|of))\b")  # "timer" is often heard as "time"
# The caller's words, as the assistant says them back: "call my mum" -> "call your mum".
_PERSON = {"my": "your", "me": "you", "i": "you", "i'm": "you're", "myself": "yourself",
           "mine": "yours", "i'll": "you'll", "i've": "you've"}


def reminder(text: str) -> str:
    """The reminder's message, from "remind me in ten minutes to call Bob" or "remind me to
    take my pills in an hour": "This is your reminder to take your pills."."""
    said = re.sub(r"[.?!]+$", "", text.strip())
    found = re.search(r"\b(to|about)\s+(.+)$", said, re.IGNORECASE)
    if not found:
        return reminder_message()
    what = found.group(2)
    # "... in ten minutes" at the end belongs to the when, not the what.
    when = re.search(r"\s+(in|after|for)\s+(.+)$", what, re.IGNORECASE)
    if when and parse_duration(when.group(2)):
        what = what[:when.start()]
    what = re.sub(r"\bI am\b", "you are", re.sub(r"\bI was\b", "you were", what))
    what = " ".join(_PERSON.get(word.lower(), word) for word in what.split())
    return reminder_message(what.strip(" ,"), about=found.group(1).lower() == "about")


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
    # Before goodbye ("send me a text saying bye"), not in a reminder ("remind me to text Bob").
    if not re.search(r"\b(remind me|reminder)\b", joined) and (
            call_control := transfer_or_text(text, joined)):
        return call_control
    if re.search(r"\b(goodbye|good bye|bye|hang up|that's all|that is all|nothing else)\b",
                 joined) and len(said) <= 8:
        return Intent(GOODBYE)
    if re.search(r"\b(remind me|reminder)\b", joined):
        duration = parse_duration(text)  # words() would split 2.5
        if duration:
            return Intent(TOOL, "SET_TIMER", {"duration": duration, "message": reminder(text)})
    if _TIMER.search(joined):
        duration = parse_duration(text)  # words() would split 2.5
        if duration:
            return Intent(TOOL, "SET_TIMER", {"duration": duration})
    if expression := arithmetic(text):
        return Intent(TOOL, "CALC", {"expression": expression})
    if re.search(r"\b(weather|temperature|forecast|how (hot|cold|warm)|raining|rain|humid|"
                 r"humidity|windy|wind|freezing (out|outside)|sunny)\b", joined):
        return Intent(TOOL, "WEATHER", {})
    if re.search(r"\bwhat time\b|\bthe time\b|\btime is it\b", joined):
        args: dict[str, Any] = {"format": "time"}
        if zone := place_timezone(text):
            args["timezone"] = zone
        elif _SOMEWHERE.search(joined):  # "in pairs": a place misheard or not known here
            return None  # not the local time: the model's routing or the LLM may know it
        return Intent(TOOL, "DATETIME", args)
    if _DATE.search(joined) and not re.search(r"\b(plus|minus|times)\b", joined):
        # not "what is day plus day plus day" ("8 plus 8 plus 8", misheard)
        return Intent(TOOL, "DATETIME", {"format": "date"})
    return None


# "... in <somewhere>" after a time question, other than "in the morning", "in here", ...
_SOMEWHERE = re.compile(r"\bin (?!(the )?(morning|afternoon|evening|night|here|now|total|"
                        r"words|numbers|this|my|our|your)\b)[a-z]+")
# Questions about today: the date's answer says the weekday first ("It's Monday, ...").
_DATE = re.compile(
    r"\b(what|which) day\b|\bwhat(s| is|'s) (the )?(date|day)\b|\btoday's date\b|"
    r"\bwhat date\b|\bwhat(s| is|'s) today\b|\bday of the week\b|"
    r"\bwhat (month|year) is it\b|\bthe date today\b")


# "Put me through to reception", "can I speak to sales": TRANSFER to the rest (the directory
# matches it loosely); at most a few words, so "I'd like to talk to you about ..." is not one.
_TRANSFER = re.compile(
    r"\b(?:put me (?:through|on|over|across)|put me(?= to )|transfer me|connect me|"
    r"patch me through|"
    r"(?:can|could|may) i (?:speak|talk)|i(?:'d| would) like to (?:speak|talk)|"
    r"i (?:want|need) to (?:speak|talk)|let me (?:speak|talk)|"
    r"(?:can|could) you (?:put me through|transfer me|connect me))"
    r"(?: (?:to|with))? (?P<who>[a-z0-9' ]+)$")
_TRANSFER_WORDS = 4
# "Text me the weather", "send me a text saying hello", "send a text to reception saying ...".
_TEXT = re.compile(
    r"\b(?:send (?:me )?(?:a )?(?:text|message|sms)|text(?: me)?|message me)\b(?P<rest>.*)$",
    re.IGNORECASE | re.DOTALL)
_TEXT_BODY = re.compile(r"\b(?:saying|that says|which says|to say|with the words)\b[\s,:]*"
                        r"(?P<body>.+)$", re.IGNORECASE | re.DOTALL)
_TEXT_TO = re.compile(r"^\s*to (?P<to>.+?)\s*$", re.IGNORECASE)
_TEXT_ABOUT = re.compile(r"^\s*(?:with|about|of|on)?\s*(?P<about>.+?)\s*$", re.IGNORECASE)


def transfer_or_text(text: str, joined: str) -> Intent | None:
    """TRANSFER or SEND_TEXT for a plain phrasing of them, else None."""
    if found := _TRANSFER.search(joined):
        who = found.group("who").strip()
        if who and len(who.split()) <= _TRANSFER_WORDS:
            return Intent(TOOL, "TRANSFER", {"to": who})
    found = _TEXT.search(text.replace("’", "'"))
    if not found or not re.search(r"\b(text|message|sms)\b", joined):
        return None
    rest, args = found.group("rest"), {}
    if body := _TEXT_BODY.search(rest):
        args["text"] = body.group("body").strip().rstrip(".!").strip()
        rest = rest[:body.start()]
    rest = rest.strip(" ,.?!")
    if to := _TEXT_TO.match(rest):
        args["to"] = to.group("to")
    elif rest and "text" not in args:
        args["about"] = _TEXT_ABOUT.match(rest).group("about")  # "the weather"
        if recognise(args["about"]) is None:
            return None  # "text me if ...": not something to send; the model may know
    if not args.get("text") and not args.get("about"):
        return None  # "send a text to reception": what to say is asked by the model
    return Intent(TOOL, "SEND_TEXT", args)

"""Numbers as people say them and Whisper writes them: "twenty three", "a hundred and five",
"one and a half", "two thousand and twelve", "3 point 5", "a quarter", "2 thousand".

`parse_number` reads one number from a list of lower-case word tokens; `words_to_digits`
rewrites every number in a text as digits, so the rules downstream (sums, durations) only
see digits. "And" joins only where English joins numbers ("a hundred and five", "one and a
half"): "add twelve and thirty" stays two numbers.
"""

from __future__ import annotations

import re

UNITS = {"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
         "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
         "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17,
         "eighteen": 18, "nineteen": 19}
TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fourty": 40, "fifty": 50, "sixty": 60,
        "seventy": 70, "eighty": 80, "ninety": 90}
SCALES = {"dozen": 12, "hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9}
# Fractions said on their own or after "a"/"and a": "half an hour", "one and a quarter".
FRACTIONS = {"half": 0.5, "quarter": 0.25, "third": 1 / 3}
PLURAL_FRACTIONS = {"halves": 0.5, "quarters": 0.25, "thirds": 1 / 3}
# Words that stand for a number only in front of a scale or fraction ("a hundred", "a half").
ARTICLES = ("a", "an")
VAGUE = {"couple": 2, "few": 3}

_TOKEN = re.compile(r"\d+(?:\.\d+)?|[a-z]+(?:'[a-z]+)?|[^\sa-z\d]")
_DIGITS = re.compile(r"\d+(?:\.\d+)?")


def _prepared(text: str) -> str:
    text = text.lower().replace("’", "'")
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)  # 1,000
    return re.sub(r"(?<=[a-z])-(?=[a-z])", " ", text)  # twenty-three


def tokens(text: str) -> list[str]:
    """Lower-case tokens: numbers in digits, words, and single symbols ("%", "+", "?")."""
    return _TOKEN.findall(_prepared(text))


def _word(tokens: list[str], i: int) -> str:
    return tokens[i] if i < len(tokens) else ""


def _below_hundred(tokens: list[str], i: int) -> tuple[int, int] | None:
    """1-99 in words at tokens[i]: "seven", "forty", "forty two"."""
    word = _word(tokens, i)
    if word in TENS:
        following = _word(tokens, i + 1)
        if following in UNITS and 0 < UNITS[following] < 10:
            return TENS[word] + UNITS[following], 2
        return TENS[word], 1
    if word in UNITS:
        return UNITS[word], 1
    return None


def _whole(tokens: list[str], i: int) -> tuple[float, int] | None:
    """A whole number in words or digits, with scales: "two thousand and twelve", "5 hundred"."""
    total, current, j, seen = 0.0, 0.0, i, False
    while j < len(tokens):
        word = tokens[j]
        if _DIGITS.fullmatch(word) and not seen:
            current, j, seen = float(word), j + 1, True
            continue
        if word in ARTICLES and not seen and _word(tokens, j + 1) in SCALES:
            current, j, seen = 1.0, j + 1, True
            continue
        if seen and word in SCALES:
            scale = SCALES[word]
            if scale < 1000:  # "two hundred", "two dozen"
                current = (current or 1) * scale
            else:
                total, current = total + (current or 1) * scale, 0.0
            j += 1
            # "a hundred and five", "two thousand and twelve": "and" then a smaller number.
            if _word(tokens, j) == "and" and _below_hundred(tokens, j + 1):
                value, used = _below_hundred(tokens, j + 1)
                current += value
                j += 1 + used
            continue
        small = _below_hundred(tokens, j)
        if small and (not seen or tokens[j - 1] in SCALES):  # "two hundred five"
            current += small[0]
            j += small[1]
            seen = True
            continue
        break
    if not seen:
        return None
    return total + current, j - i


def parse_number(tokens: list[str], i: int) -> tuple[float, int] | None:
    """(value, tokens used) of the number starting at tokens[i], or None.

    Whole numbers, decimals ("three point five"), fractions ("a half", "three quarters",
    "one and a half", "two and three quarters") and "a couple" / "a few" / "a dozen".
    """
    word = _word(tokens, i)
    if word in ARTICLES:
        following = _word(tokens, i + 1)
        if following in FRACTIONS:
            return FRACTIONS[following], 2
        if following in VAGUE:
            used = 3 if _word(tokens, i + 2) == "of" else 2
            return VAGUE[following], used
    if word in FRACTIONS:
        return FRACTIONS[word], 1
    if word in VAGUE:
        return VAGUE[word], 2 if _word(tokens, i + 1) == "of" else 1
    whole = _whole(tokens, i)
    if whole is None:
        return None
    value, used = whole
    j = i + used
    # "three point five", "1 point 25"
    if _word(tokens, j) == "point" and (_word(tokens, j + 1) in UNITS
                                        or _DIGITS.fullmatch(_word(tokens, j + 1))):
        digits = ""
        k = j + 1
        while k < len(tokens) and (tokens[k] in UNITS and UNITS[tokens[k]] < 10
                                   or (not digits and tokens[k].isdigit())):
            digits += str(UNITS[tokens[k]]) if tokens[k] in UNITS else tokens[k]
            k += 1
        if digits:
            value, j = float(f"{int(value)}.{digits}"), k
    # "three quarters", "two thirds"
    if _word(tokens, j) in PLURAL_FRACTIONS and value < 10:
        return value * PLURAL_FRACTIONS[tokens[j]], j + 1 - i
    # "one and a half", "two and three quarters"
    if _word(tokens, j) == "and":
        fraction = _fraction(tokens, j + 1)
        if fraction:
            return value + fraction[0], j + 1 + fraction[1] - i
    return value, j - i


def _fraction(tokens: list[str], i: int) -> tuple[float, int] | None:
    """ "a half", "a quarter", "three quarters" at tokens[i]."""
    word = _word(tokens, i)
    if word in ARTICLES and _word(tokens, i + 1) in FRACTIONS:
        return FRACTIONS[tokens[i + 1]], 2
    small = _below_hundred(tokens, i)
    if small and small[0] < 10 and _word(tokens, i + small[1]) in PLURAL_FRACTIONS:
        return small[0] * PLURAL_FRACTIONS[tokens[i + small[1]]], small[1] + 1
    return None


def format_number(value: float) -> str:
    """Digits for a parsed number: 23, 1.5, 0.333333."""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.6g}"


def words_to_digits(text: str) -> str:
    """The text, lower-case, with every number in words as digits: "twenty three" -> "23".

    Everything else, spacing and symbols included, stays as it was ("15%", "2**3").
    """
    text = _prepared(text)
    spans = [(m.group(0), m.start(), m.end()) for m in _TOKEN.finditer(text)]
    found = [token for token, _start, _end in spans]
    out, position, i = [], 0, 0
    while i < len(found):
        parsed = parse_number(found, i)
        if parsed and not (parsed[1] == 1 and _DIGITS.fullmatch(found[i])):
            value, used = parsed
            out.append(text[position:spans[i][1]] + format_number(value))
            position = spans[i + used - 1][2]
            i += used
        else:
            i += 1
    return "".join(out) + text[position:]


def has_number(text: str) -> bool:
    """Whether the text holds a number, in digits or words ("a" and "an" alone do not count)."""
    found = tokens(text)
    return any(parse_number(found, i) for i in range(len(found)))


# --- durations, for timers and reminders -------------------------------------------------

SECONDS = {"second": 1, "seconds": 1, "sec": 1, "secs": 1, "minute": 60, "minutes": 60,
           "min": 60, "mins": 60, "hour": 3600, "hours": 3600, "hr": 3600, "hrs": 3600,
           "day": 86400, "days": 86400}


def parse_duration(text: str) -> int | None:
    """Seconds in what a caller says: "five minutes", "1 hour and 30 minutes", "90 seconds",
    "half an hour", "a minute and a half", "quarter of an hour", "an hour and a quarter",
    "two and a half minutes", "a couple of minutes", "1.5 hours"."""
    found = [t for t in tokens(text) if re.fullmatch(r"[a-z\d.']+", t)]
    total, matched, i = 0.0, False, 0
    units: list[int] = []  # the unit of each part, which must get smaller: "1 hour 30 minutes"
    while i < len(found):
        parsed = parse_number(found, i)
        if parsed is None and found[i] in ARTICLES and _word(found, i + 1) in SECONDS:
            parsed = (1.0, 1)  # "an hour", "a minute"
        if parsed is None:
            i += 1
            continue
        value, used = parsed
        j = i + used
        while _word(found, j) in ("of", "a", "an"):  # "quarter of an hour", "half a minute"
            j += 1
        unit = SECONDS.get(_word(found, j))
        if unit is None:
            i += 1
            continue
        if units and unit >= units[-1]:
            return None  # "20 minutes, a few minutes": two durations, not one
        units.append(unit)
        total += value * unit
        matched = True
        j += 1
        # "a minute and a half", "an hour and three quarters"
        if _word(found, j) == "and" and (fraction := _fraction(found, j + 1)):
            total += fraction[0] * unit
            j += 1 + fraction[1]
        i = j
    return int(round(total)) if matched and total > 0 else None

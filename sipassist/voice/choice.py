"""Choice collection: the request's `choice` object, and matching an answer to one option.

Matching is on whole words and phrases, blind to case and punctuation. A phrase right after a
negation ("not", "don't", ...) does not count, so "don't confirm" never means confirmed. An
answer that matches two options is treated as no match (the caller is asked again).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

MAX_OPTIONS = 9
DIGITS = "0123456789*#"
NEGATIONS = frozenset({
    "not", "don't", "dont", "do", "never", "won't", "wont", "can't", "cant", "cannot",
    "isn't", "isnt", "doesn't", "doesnt", "didn't", "didnt", "shouldn't", "wouldn't",
    "no", "neither", "nor",
})
# "do" counts only as part of "do not"; handled by the "not" that follows it.
NEGATION_WINDOW = 3  # words before a phrase that can negate it


class ChoiceError(ValueError):
    """A bad `choice` object; the message is an API `detail`."""


def words(text: str) -> list[str]:
    """Lower-case words; apostrophes inside words are kept ("don't")."""
    return re.findall(r"[a-z0-9]+(?:'[a-z]+)?", text.lower().replace("’", "'"))


@dataclass(frozen=True)
class ChoiceOption:
    value: str
    synonyms: tuple[str, ...]
    digit: str

    def phrases(self) -> list[list[str]]:
        found = [words(self.value.replace("_", " "))]
        found += [words(s) for s in self.synonyms]
        return [p for p in found if p]


@dataclass(frozen=True)
class ChoiceSpec:
    prompt: str
    options: tuple[ChoiceOption, ...]
    timeout_seconds: int = 15

    def to_document(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> ChoiceSpec:
        options = tuple(ChoiceOption(o["value"], tuple(o["synonyms"]), o["digit"])
                        for o in doc["options"])
        return cls(doc["prompt"], options, doc["timeout_seconds"])

    @classmethod
    def from_request(cls, data: object, max_timeout: int = 120) -> ChoiceSpec:
        if not isinstance(data, dict):
            raise ChoiceError("choice must be an object with prompt, options and timeout_seconds")
        unknown = sorted(set(data) - {"prompt", "options", "timeout_seconds"})
        if unknown:
            raise ChoiceError(f"choice: unknown field '{unknown[0]}'; allowed fields are "
                              "options, prompt, timeout_seconds")
        options = _options(data.get("options"))
        prompt = data.get("prompt")
        if prompt is None:
            names = [o.value.replace("_", " ") for o in options]
            prompt = "Please say " + (" or ".join(names) if len(names) < 3
                                      else ", ".join(names[:-1]) + " or " + names[-1]) + "."
        elif not isinstance(prompt, str) or not prompt.strip():
            raise ChoiceError("choice.prompt must be a non-empty string")
        elif len(prompt) > 1000:
            raise ChoiceError("choice.prompt is longer than 1000 characters")
        timeout = data.get("timeout_seconds", 15)
        if isinstance(timeout, bool) or not isinstance(timeout, int):
            raise ChoiceError(f"choice.timeout_seconds must be a whole number of seconds, "
                              f"not {timeout!r}")
        if not 1 <= timeout <= max_timeout:
            raise ChoiceError(f"choice.timeout_seconds must be between 1 and {max_timeout}")
        return cls(prompt.strip(), options, timeout)

    def match_digit(self, digit: str) -> ChoiceOption | None:
        return next((o for o in self.options if o.digit == digit), None)

    def match(self, transcript: str) -> ChoiceOption | None:
        """The one option the transcript names, or None (nothing, or more than one)."""
        said = words(transcript)
        matched = {o.value for o in self.options for p in o.phrases() if _said(said, p)}
        if len(matched) != 1:
            return None
        value = matched.pop()
        return next(o for o in self.options if o.value == value)


def _said(said: list[str], phrase: list[str]) -> bool:
    """`phrase` occurs in `said` as whole words, not right after a negation."""
    size = len(phrase)
    for start in range(len(said) - size + 1):
        if said[start:start + size] != phrase:
            continue
        before = said[max(0, start - NEGATION_WINDOW):start]
        if not any(w in NEGATIONS and w != "do" for w in before):
            return True
    return False


def _options(raw: object) -> tuple[ChoiceOption, ...]:
    if not isinstance(raw, list) or not raw:
        raise ChoiceError("choice.options must be a non-empty list of {value, synonyms}")
    if len(raw) > MAX_OPTIONS:
        raise ChoiceError(f"choice.options may hold at most {MAX_OPTIONS} options")
    options: list[ChoiceOption] = []
    values: set[str] = set()
    phrases: dict[tuple[str, ...], str] = {}
    digits: set[str] = set()
    for index, item in enumerate(raw):
        where = f"choice.options[{index}]"
        if not isinstance(item, dict):
            raise ChoiceError(f"{where} must be an object with value and synonyms")
        unknown = sorted(set(item) - {"value", "synonyms", "digit"})
        if unknown:
            raise ChoiceError(f"{where}: unknown field '{unknown[0]}'; allowed fields are "
                              "digit, synonyms, value")
        value = item.get("value")
        if not isinstance(value, str) or not value.strip() or len(value) > 64:
            raise ChoiceError(f"{where}.value must be a non-empty string of at most 64 characters")
        value = value.strip()
        if value.lower() in values:
            raise ChoiceError(f"{where}.value '{value}' is used by another option; "
                              "values must be unique")
        values.add(value.lower())
        synonyms = item.get("synonyms", [])
        if not isinstance(synonyms, list) or len(synonyms) > 20 or not all(
                isinstance(s, str) and words(s) for s in synonyms):
            raise ChoiceError(f"{where}.synonyms must be a list of up to 20 words or phrases")
        digit = item.get("digit", str(index + 1))
        if not isinstance(digit, str) or len(digit) != 1 or digit not in DIGITS:
            raise ChoiceError(f"{where}.digit must be one keypad key: 0-9, * or #")
        if digit in digits:
            raise ChoiceError(f"{where}.digit '{digit}' is used by another option")
        digits.add(digit)
        option = ChoiceOption(value, tuple(s.strip() for s in synonyms), digit)
        for phrase in option.phrases():
            owner = phrases.setdefault(tuple(phrase), value)
            if owner != value:
                raise ChoiceError(f"{where}: '{' '.join(phrase)}' also belongs to option "
                                  f"'{owner}'; each word or phrase may name one option only")
        options.append(option)
    return tuple(options)

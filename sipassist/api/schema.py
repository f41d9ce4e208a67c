"""Request and response schemas: pydantic v2 models, one per body, declared once.

Why pydantic: it is already in the venv (faster-whisper's dependencies bring it), its JSON Schema
is draft 2020-12, which OpenAPI 3.1 takes as it is, and other helpers and contributors know it.

A request body is checked in three steps, so the `detail` of a bad request reads as it always
has: the body must be a JSON object (`parse_json_object`); it may hold only the model's fields;
then the model validates it in strict mode (no "30" taken for 30), and the first error in field
order becomes the detail (`describe_error`). Fields that need today's exact wording use the
validators below (`Text`, `WholeNumber`), which raise ValueError with the finished sentence.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic import ValidationInfo

from .errors import ApiError


class RequestModel(BaseModel):
    """Base of request bodies and queries: unknown fields are refused, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ResponseModel(BaseModel):
    """Base of documented responses (handlers may also return plain dicts of this shape)."""

    model_config = ConfigDict(extra="allow")


# -- reading the body ---------------------------------------------------------------------------

def parse_json_object(raw: bytes, allow_empty: bool = False) -> dict[str, Any]:
    if not raw.strip():
        if allow_empty:
            return {}
        raise ApiError(400, "request body is empty: send a JSON object")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError(400, "request body must be a JSON object")
    return data


def field_names(model: type[BaseModel]) -> set[str]:
    return {f.alias or name for name, f in model.model_fields.items()}


def validate(model: type[BaseModel], data: dict[str, Any], context: dict[str, Any]) -> BaseModel:
    """`data` as a `model`, or ApiError(400) with the first problem in words."""
    allowed = field_names(model)
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ApiError(400, f"unknown field '{unknown[0]}'; allowed fields are "
                            + ", ".join(sorted(allowed)))
    try:
        return model.model_validate(data, strict=True, context=context)
    except ValidationError as exc:
        raise ApiError(400, describe_error(exc.errors()[0])) from None


# -- errors in words ----------------------------------------------------------------------------

def location(loc: tuple) -> str:
    """('choice', 'options', 1, 'value') -> 'choice.options[1].value'."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text or "request body"


def describe_error(error: dict[str, Any]) -> str:
    """One pydantic error as a sentence that names the field and the fix."""
    kind, where, value = error["type"], location(error["loc"]), error.get("input")
    ctx = error.get("ctx") or {}
    if kind in ("value_error", "assertion_error") and "error" in ctx:
        return str(ctx["error"])  # our own validators write the whole sentence
    simple = {
        "missing": f"{where} is required",
        "extra_forbidden": f"unknown field '{where}'",
        "string_type": f"{where} must be a string, not {type(value).__name__}",
        "int_type": f"{where} must be a whole number, not {value!r}",
        "int_from_float": f"{where} must be a whole number, not {value!r}",
        "float_type": f"{where} must be a number, not {value!r}",
        "finite_number": f"{where} must be a finite number",
        "bool_type": f"{where} must be true or false",
        "dict_type": f"{where} must be an object",
        "model_type": f"{where} must be an object",
        "model_attributes_type": f"{where} must be an object",
        "list_type": f"{where} must be a list",
    }
    if kind in simple:
        return simple[kind]
    if kind == "literal_error":
        return f"{where} must be one of {ctx.get('expected')}"
    if kind == "string_too_long":
        return f"{where} is longer than {ctx.get('max_length')} characters"
    if kind == "string_too_short":
        if ctx.get("min_length") == 1:
            return f"{where} must not be empty"
        return f"{where} is shorter than {ctx.get('min_length')} characters"
    if kind == "too_long":
        return f"{where} may hold at most {ctx.get('max_length')} items"
    if kind == "too_short":
        return f"{where} must hold at least {ctx.get('min_length')} item(s)"
    bounds = {"greater_than_equal": ("at least", "ge"), "greater_than": ("more than", "gt"),
              "less_than_equal": ("at most", "le"), "less_than": ("less than", "lt")}
    if kind in bounds:
        words, key = bounds[kind]
        return f"{where} must be {words} {ctx.get(key)}"
    return f"{where}: {error.get('msg', 'invalid value')}"


# -- fields with today's wording ----------------------------------------------------------------

def _text_check(required: bool, max_length: int, strip: bool):
    def check(value: Any, info: ValidationInfo) -> Any:
        name = info.field_name
        if value is None:
            if required:
                raise ValueError(f"{name} is required")
            return None
        if not isinstance(value, str):
            raise ValueError(f"{name} must be a string, not {type(value).__name__}")
        if strip:
            value = value.strip()
        if required and not value:
            raise ValueError(f"{name} must not be empty")
        if len(value) > max_length:
            raise ValueError(f"{name} is longer than {max_length} characters")
        return value
    return check


def Text(*, required: bool = False, max_length: int = 5000, strip: bool = True,  # noqa: N802
         **field: Any) -> Any:
    """A string field: None is absent (or "X is required"), stripped, at most `max_length`."""
    kind = str if required else str | None
    return Annotated[kind, BeforeValidator(_text_check(required, max_length, strip)),
                     Field(max_length=max_length, **field)]


def _whole_check(low: int | str, high: int | str, unit: str):
    def check(value: Any, info: ValidationInfo) -> Any:
        name = info.field_name
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must be a whole number{unit}, not {value!r}")
        lo, hi = (_bound(b, info) for b in (low, high))
        if not lo <= value <= hi:
            raise ValueError(f"{name} must be between {lo} and {hi}")
        return value
    return check


def _bound(bound: int | str, info: ValidationInfo) -> int:
    """A number, or the name of a number in the validation context (a setting)."""
    if isinstance(bound, int):
        return bound
    return int((info.context or {})[bound])


def WholeNumber(*, low: int | str, high: int | str, unit: str = "",  # noqa: N802
                **field: Any) -> Any:
    """An optional integer between `low` and `high` (a number or a context key)."""
    return Annotated[int | None, BeforeValidator(_whole_check(low, high, unit)), Field(**field)]

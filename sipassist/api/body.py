"""Reading and checking JSON request bodies; each problem names the field and the fix."""

from __future__ import annotations

import json
from typing import Any

import bottle

from .errors import ApiError


def json_object(allowed: set[str], allow_empty: bool = False) -> dict[str, Any]:
    """The request body as a JSON object with no fields outside `allowed`."""
    raw = bottle.request.body.read()
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
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ApiError(400, f"unknown field '{unknown[0]}'; allowed fields are "
                            + ", ".join(sorted(allowed)))
    return data


def text(data: dict[str, Any], name: str, *, required: bool = False, max_length: int = 5000,
         strip: bool = True) -> str | None:
    value = data.get(name)
    if value is None:
        if required:
            raise ApiError(400, f"{name} is required")
        return None
    if not isinstance(value, str):
        raise ApiError(400, f"{name} must be a string, not {type(value).__name__}")
    if strip:
        value = value.strip()
    if required and not value:
        raise ApiError(400, f"{name} must not be empty")
    if len(value) > max_length:
        raise ApiError(400, f"{name} is longer than {max_length} characters")
    return value


def integer(data: dict[str, Any], name: str, *, default: int, low: int, high: int) -> int:
    value = data.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(400, f"{name} must be a whole number of seconds, not {value!r}")
    if not low <= value <= high:
        raise ApiError(400, f"{name} must be between {low} and {high}")
    return value

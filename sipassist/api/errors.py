"""API errors: every failure is JSON `{"detail": "..."}` with the right status."""

from __future__ import annotations

import json
import logging

import bottle

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}  # e.g. Retry-After on a 503


def json_response(status: int, body: object) -> bottle.HTTPResponse:
    return bottle.HTTPResponse(
        status=status, body=json.dumps(body),
        headers={"Content-Type": "application/json"},
    )


def install(app: bottle.Bottle) -> None:
    """Turn ApiError and Bottle's own errors (404, 405, 500) into JSON."""

    def handle_api_errors(callback):
        def wrapper(*args, **kwargs):
            try:
                return callback(*args, **kwargs)
            except ApiError as exc:
                response = json_response(exc.status, {"detail": exc.detail})
                for name, value in exc.headers.items():
                    response.set_header(name, value)
                return response
            except bottle.HTTPResponse:
                raise
            except Exception:
                log.exception("unhandled error in %s %s", bottle.request.method,
                              bottle.request.path)
                return json_response(500, {"detail": "internal server error; see the daemon's log"})
        return wrapper

    app.install(handle_api_errors)

    def default_error(error: bottle.HTTPError) -> str:
        bottle.response.content_type = "application/json"
        if error.status_code == 404:
            detail = f"No such endpoint: {bottle.request.method} {bottle.request.path}"
        elif error.status_code == 405:
            detail = f"Method {bottle.request.method} is not allowed on {bottle.request.path}"
        else:
            detail = str(error.body or error.status_line)
        return json.dumps({"detail": detail})

    app.default_error_handler = default_error

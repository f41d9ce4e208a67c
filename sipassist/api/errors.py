"""API errors: every failure is JSON in both seeds' shapes, with the right status.

    {"detail": "...", "error": {"statusCode": 400, "name": "BadRequestError", "message": "..."}}

Seed-003 clients read `detail`; seed-000 clients read `error`. Handlers raise ApiError; Bottle's
own errors (404, 405, 500) and the gate's (401, 403, 413, 429) come out the same way.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping

import bottle

log = logging.getLogger(__name__)

# The seed-000 `name` of each status (the http-errors names its platform uses).
ERROR_NAMES = {
    400: "BadRequestError",
    401: "UnauthorizedError",
    403: "ForbiddenError",
    404: "NotFoundError",
    405: "MethodNotAllowedError",
    408: "RequestTimeoutError",
    409: "ConflictError",
    411: "LengthRequiredError",
    413: "PayloadTooLargeError",
    415: "UnsupportedMediaTypeError",
    422: "UnprocessableEntityError",
    429: "TooManyRequestsError",
    500: "InternalServerError",
    501: "NotImplementedError",
    503: "ServiceUnavailableError",
    504: "GatewayTimeoutError",
}


class ApiError(Exception):
    """Raise in a handler: `status` and a `detail` that says what to fix.

    `headers` go out with the error (for example {"Retry-After": "5"} with a 503).
    """

    def __init__(self, status: int, detail: str,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = dict(headers or {})


def error_body(status: int, detail: str) -> dict:
    name = ERROR_NAMES.get(status, "ClientError" if status < 500 else "ServerError")
    return {"detail": detail,
            "error": {"statusCode": status, "name": name, "message": detail}}


def error_bytes(status: int, detail: str) -> bytes:
    return json.dumps(error_body(status, detail)).encode()


def json_response(status: int, body: object,
                  headers: Mapping[str, str] | None = None) -> bottle.HTTPResponse:
    return bottle.HTTPResponse(
        status=status, body=json.dumps(body),
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def error_response(status: int, detail: str,
                   headers: Mapping[str, str] | None = None) -> bottle.HTTPResponse:
    return json_response(status, error_body(status, detail), headers)


def from_exception(exc: ApiError) -> bottle.HTTPResponse:
    return error_response(exc.status, exc.detail, exc.headers)


def install(app: bottle.Bottle) -> None:
    """Turn ApiError and Bottle's own errors (404, 405, 500) into JSON."""

    def handle_api_errors(callback):
        def wrapper(*args, **kwargs):
            try:
                return callback(*args, **kwargs)
            except ApiError as exc:
                return from_exception(exc)
            except bottle.HTTPResponse:
                raise
            except Exception:
                log.exception("unhandled error in %s %s", bottle.request.method,
                              bottle.request.path)
                return error_response(500, "internal server error; see the daemon's log")
        return wrapper

    app.install(handle_api_errors)

    def default_error(error: bottle.HTTPError) -> str:
        bottle.response.content_type = "application/json"
        if error.status_code == 404:
            detail = f"No such endpoint: {bottle.request.method} {bottle.request.path}"
        elif error.status_code == 405:
            detail = f"Method {bottle.request.method} is not allowed on {bottle.request.path}"
        elif error.status_code == 500:
            detail = "internal server error; see the daemon's log"
        else:
            detail = str(error.body or error.status_line)
        return json.dumps(error_body(error.status_code, detail))

    app.default_error_handler = default_error

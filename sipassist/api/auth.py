"""API token: with `[api] token` set, every endpoint but GET /health wants a bearer token.

Clients send `Authorization: Bearer <token>`. A missing or wrong token gets 401 with a JSON
`detail` saying how to send it and `WWW-Authenticate: Bearer`. The comparison is constant-time.
"""

from __future__ import annotations

import hmac
import logging

import bottle

from .errors import json_response

log = logging.getLogger(__name__)

# Routes anyone may call: load balancers, `sipassist check` and people asking "is it up?".
OPEN_ROUTES = frozenset({("GET", "/health")})

HOW_TO_SEND = ("send the header 'Authorization: Bearer <token>' with the token from [api] token "
               "in the daemon's config (/etc/sipassist/sipassist.toml)")


def unauthorized(detail: str) -> bottle.HTTPResponse:
    response = json_response(401, {"detail": detail})
    response.set_header("WWW-Authenticate", 'Bearer realm="sipassist"')
    return response


def presented_token(header: str) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None if it is not one."""
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


class TokenAuth:
    """Bottle plugin: wraps every route except OPEN_ROUTES; does nothing without a token."""

    name = "token_auth"
    api = 2

    def __init__(self, token: str) -> None:
        self._token = token.encode()

    def apply(self, callback, route: bottle.Route):
        # A route declared with open=True (GET /metrics with [api] metrics_open) needs no token.
        if not self._token or (route.method, route.rule) in OPEN_ROUTES or \
                route.config.get("open"):
            return callback

        def wrapper(*args, **kwargs):
            # The raw WSGI value (latin-1 text): Bottle's own decoding fails on non-UTF-8 bytes.
            header = bottle.request.environ.get("HTTP_AUTHORIZATION", "")
            if not header:
                return unauthorized(f"API token required: {HOW_TO_SEND}")
            token = presented_token(header)
            if token is None:
                return unauthorized(f"Authorization header is not a bearer token: {HOW_TO_SEND}")
            # Compare bytes: compare_digest takes only ASCII str, and a header may hold anything.
            if not hmac.compare_digest(token.encode("latin-1", "replace"), self._token):
                log.warning("API request with a wrong token from %s: %s %s",
                            bottle.request.remote_addr, bottle.request.method, bottle.request.path)
                return unauthorized(f"wrong API token: {HOW_TO_SEND}")
            return callback(*args, **kwargs)

        return wrapper


def install(app: bottle.Bottle, token: str) -> None:
    app.install(TokenAuth(token))

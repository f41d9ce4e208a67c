"""[api] token: every endpoint but GET /health wants the token (bearer or api-key header)."""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request

from pathlib import Path

import pytest

from sipassist import config
from sipassist.api.gate import Gate, presented_key
from sipassist.api.keys import KeyStore
from sipassist.api.routing import Api

TOKEN = "s3cret-token-for-the-tests_0123456789"


def call(url: str, method: str = "GET", body: object = None,
         authorization: str | None = None) -> tuple[int, dict, dict]:
    """(status, JSON body, headers) of one request."""
    headers = {"Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read()), _lower(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), _lower(error.headers)


def _lower(headers) -> dict:
    return {name.lower(): value for name, value in headers.items()}


# -- against a running daemon -----------------------------------------------------------------

@pytest.mark.telephony
@pytest.mark.models
def test_token_guards_everything_but_health(start_daemon, phone) -> None:
    daemon = start_daemon(phone, api={"token": TOKEN})
    url = daemon.url

    status, body, _ = call(url + "/health")
    assert status == 200 and body["status"] == "healthy"

    status, body, headers = call(url + "/queue")
    assert status == 401
    assert "Authorization: Bearer <token>" in body["detail"]
    assert "[api] token" in body["detail"]
    assert headers["www-authenticate"].startswith("Bearer")
    assert headers["content-type"] == "application/json"

    status, body, headers = call(url + "/queue", authorization="Bearer wrong-token-0123456789")
    assert status == 401 and "wrong API token" in body["detail"]
    assert headers["www-authenticate"].startswith("Bearer")

    status, body, _ = call(url + "/queue", authorization=f"Basic {TOKEN}")
    assert status == 401 and "not a bearer token" in body["detail"]

    status, body, _ = call(url + "/queue", authorization=f"Bearer {TOKEN}")
    assert status == 200 and "pending" in body
    status, _, _ = call(url + "/queue", authorization=f"bearer  {TOKEN} ")
    assert status == 200

    # A call without the token is refused before anything is queued or dialed.
    order = {"message": "Hello", "extension": phone.uri}
    status, body, _ = call(url + "/call", "POST", order)
    assert status == 401
    status, body, _ = call(url + "/queue", authorization=f"Bearer {TOKEN}")
    assert body["pending"] == 0 and body["total_processed"] == 0

    # Input errors still come out as before once authenticated.
    status, body, _ = call(url + "/call", "POST", {"message": ""},
                           authorization=f"Bearer {TOKEN}")
    assert status == 400 and "detail" in body

    # Unknown endpoints keep their JSON 404.
    status, body, _ = call(url + "/nonsense", authorization=f"Bearer {TOKEN}")
    assert status == 404 and "No such endpoint" in body["detail"]


@pytest.mark.telephony
@pytest.mark.models
def test_no_token_means_an_open_api(start_daemon, phone) -> None:
    daemon = start_daemon(phone)
    assert daemon.settings.api.token == ""
    status, body, _ = call(daemon.url + "/queue")
    assert status == 200 and "pending" in body


# -- the gate alone, through WSGI -------------------------------------------------------------

def wsgi(app, method: str, path: str, authorization: str | None = None
         ) -> tuple[str, dict, dict]:
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "SERVER_NAME": "test",
               "SERVER_PORT": "80", "wsgi.input": io.BytesIO(b""), "wsgi.url_scheme": "http",
               "wsgi.errors": io.StringIO(),
               "REMOTE_ADDR": "127.0.0.1"}
    if authorization is not None:
        environ["HTTP_AUTHORIZATION"] = authorization
    captured: dict = {}

    def start_response(status: str, headers: list, exc_info: object = None) -> None:
        captured["status"] = status
        captured["headers"] = _lower(dict(headers))

    body = b"".join(app(environ, start_response))
    return captured["status"], json.loads(body or b"{}"), captured["headers"]


def small_app(token: str, state: Path) -> Gate:
    api = Api()
    api.get("/health", summary="health", open=True)(lambda: {"status": "healthy"})

    def get_queue() -> dict:
        return {"pending": 0}

    def post_queue() -> dict:
        return {"posted": True}

    api.get("/queue", summary="queue")(get_queue)
    api.post("/queue", summary="queue", allow_empty_body=True)(post_queue)
    return Gate(api, config.ApiSettings(token=token), KeyStore(state))


def test_gate_without_token_changes_nothing(tmp_path: Path) -> None:
    app = small_app("", tmp_path)
    assert wsgi(app, "GET", "/queue")[0].startswith("200")
    assert wsgi(app, "POST", "/queue")[0].startswith("200")


def test_gate_with_token(tmp_path: Path) -> None:
    app = small_app(TOKEN, tmp_path)
    assert wsgi(app, "GET", "/health")[0].startswith("200")
    assert wsgi(app, "HEAD", "/health")[0].startswith("200")
    status, body, headers = wsgi(app, "GET", "/queue")
    assert status.startswith("401") and headers["www-authenticate"].startswith("Bearer")
    assert "API token required" in body["detail"]
    assert body["error"] == {"statusCode": 401, "name": "UnauthorizedError",
                             "message": body["detail"]}
    assert wsgi(app, "POST", "/queue", f"Bearer {TOKEN}x")[0].startswith("401")
    assert wsgi(app, "POST", "/queue", f"Bearer {TOKEN[:-1]}")[0].startswith("401")
    assert wsgi(app, "POST", "/queue", "Bearer")[0].startswith("401")
    assert wsgi(app, "POST", "/queue", "Bearer \u00e9t\u00e9")[0].startswith("401")
    assert wsgi(app, "POST", "/queue", f"Bearer {TOKEN}")[0].startswith("200")


def test_presented_key() -> None:
    def key(header: str) -> str | None:
        return presented_key({"HTTP_AUTHORIZATION": header})[0]

    assert key(f"Bearer {TOKEN}") == TOKEN
    assert key(f"  BEARER   {TOKEN}  ") == TOKEN
    assert key(f"Basic {TOKEN}") is None
    assert key("Bearer ") is None
    assert key("") is None
    assert presented_key({"HTTP_API_KEY": f" {TOKEN} "})[0] == TOKEN


# -- config -----------------------------------------------------------------------------------

def test_token_defaults_to_empty_and_is_validated() -> None:
    assert config.parse({}).api.token == ""
    assert config.parse({"api": {"token": TOKEN}}).api.token == TOKEN
    for bad in ("short", "has spaces in it, too many of them", 'quote"in-the-middle-here', 42):
        with pytest.raises(config.ConfigError) as error:
            config.parse({"api": {"token": bad}})
        assert "api.token" in str(error.value)

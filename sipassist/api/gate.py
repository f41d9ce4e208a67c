"""The gate in front of the app: who is calling, may they, how much, how big a body.

A WSGI middleware, so it sees every request, the 404s and 405s included:
1. Open routes (GET /health, the docs) pass; no key, no charge (the headers still tell).
2. With any key configured, a request needs one, as `api-key: <key>` or
   `Authorization: Bearer <key>`; else 401. With no key at all the API serves 127.0.0.1 only
   (see `listen_host`) and every local client may do everything.
3. Each request costs one in its client's request windows: 429 with Retry-After past a limit.
   Failed authentications are charged to the address, which slows down guessing.
4. A read-only key may only GET (403); /v1/keys wants an admin key (403).
5. A declared Content-Length over the route's limit: 413 before the body is read.
Every response gets X-RateLimit-Limit, -Remaining and -Reset.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass
from http import HTTPStatus

from ..config import ApiSettings, LimitSettings
from .errors import error_bytes
from .keys import ApiKey, KeyProblem, KeyStore
from .limits import ENVIRON_KEY, WORDS, Meter, RateLimiter, Verdict
from .routing import SAFE_METHODS, Api, Operation, too_large_detail

log = logging.getLogger(__name__)

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
HOW_TO_SEND = ("send the header 'Authorization: Bearer <token>' or 'api-key: <token>' with a "
               "key from `sipassist keys create NAME`, or the token from [api] token in the "
               "daemon's config (/etc/sipassist/sipassist.toml)")


@dataclass(frozen=True)
class Client:
    """Who a request comes from, as far as permissions and limits go."""

    bucket: str  # the rate-limit identity: "key:NAME", "token" or "address:IP"
    read_only: bool = False
    admin: bool = False
    limits: LimitSettings = LimitSettings()


def listen_host(api: ApiSettings, keys: KeyStore) -> tuple[str, str | None]:
    """Where to listen, and a warning when that is not what [api] host says."""
    if api.token or keys.any_active() or api.host in LOOPBACK_HOSTS:
        return api.host, None
    return "127.0.0.1", (
        f"no API key exists, so the API listens on 127.0.0.1 only (not {api.host}): "
        "create one with `sipassist keys create NAME` (or set [api] token) and restart "
        "to serve other machines")


def presented_key(environ: dict) -> tuple[str | None, str | None]:
    """(the key, a problem): from `api-key: <key>` or `Authorization: Bearer <key>`."""
    # The raw WSGI values (latin-1 text): a header may hold any bytes.
    api_key = environ.get("HTTP_API_KEY", "").strip()
    if api_key:
        return api_key, None
    header = environ.get("HTTP_AUTHORIZATION", "")
    if not header:
        return None, f"API token required: {HOW_TO_SEND}"
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None, f"Authorization header is not a bearer token: {HOW_TO_SEND}"
    return value.strip(), None


class FailureLog:
    """Authentication failures, logged at most once a minute per source, with a count."""

    def __init__(self, interval: float = 60.0, clock=time.monotonic, sources: int = 1024) -> None:
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._sources: OrderedDict[str, list] = OrderedDict()  # source -> [last log, count]
        self._max = sources

    def note(self, source: str, what: str) -> None:
        now = self._clock()
        with self._lock:
            entry = self._sources.get(source)
            if entry is not None and now - entry[0] < self._interval:
                entry[1] += 1
                return
            count = (entry[1] if entry else 0) + 1
            self._sources[source] = [now, 0]
            self._sources.move_to_end(source)
            while len(self._sources) > self._max:
                self._sources.popitem(last=False)
        if count == 1:
            log.warning("API: %s from %s", what, source)
        else:
            log.warning("API: %d requests refused for a missing or wrong key from %s in the "
                        "last minute or more; the latest: %s", count, source, what)


class Gate:
    def __init__(self, api: Api, settings: ApiSettings, keys: KeyStore,
                 limiter: RateLimiter | None = None, failures: FailureLog | None = None) -> None:
        self.api = api
        self.settings = settings
        self.keys = keys
        self.limiter = limiter or RateLimiter()
        self.failures = failures or FailureLog()
        self._token = settings.token.encode()
        # Requests refused here, by status (401, 403, 413, 429, 503): for /metrics.
        self.refusals: Counter[int] = Counter()
        self._count_lock = threading.Lock()

    def _counted(self, refusal: Refusal | None) -> Refusal | None:
        if refusal is not None:
            with self._count_lock:
                self.refusals[refusal.status] += 1
        return refusal

    def screen(self, method: str, path: str, headers: dict[str, str], address: str,
               length: int) -> Refusal | None:
        """Called by the server as soon as a request's headers are in, for requests with a
        body: a missing or wrong key (401) or a body over the route's limit (413) is refused
        then, before any of the body is read or buffered. Rate limits wait for the request."""
        environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "REMOTE_ADDR": address,
                   "HTTP_AUTHORIZATION": headers.get("AUTHORIZATION", ""),
                   "HTTP_API_KEY": headers.get("API_KEY", "")}
        op = self.api.operation_for(environ)
        if op is None or not op.open:
            client, status, detail = self._client(environ)
            if client is None:
                return self._counted(self._unknown_client(environ, status, detail))
            verdict = self.limiter.peek(client.bucket, client.limits)
        else:
            verdict = self.limiter.peek(f"address:{address}", self.settings.limits)
        limit = op.body_limit if op is not None else self.api.json_limit
        if length > limit:
            return self._counted(Refusal(413, too_large_detail(length, limit), verdict))
        return None

    # -- who is it ---------------------------------------------------------------------------

    def _client(self, environ: dict) -> tuple[Client | None, int, str]:
        """(client, 0, "") or (None, status, detail)."""
        address = environ.get("REMOTE_ADDR", "")
        try:
            any_key = bool(self._token) or self.keys.any_active()
        except KeyProblem as exc:
            log.error("%s", exc)
            return None, 503, f"API keys cannot be read: {exc}"
        if not any_key:
            return Client(f"address:{address}", admin=True, limits=self.settings.limits), 0, ""
        key, problem = presented_key(environ)
        if key is None:
            return None, 401, problem or ""
        encoded = key.encode("latin-1", "replace")
        if self._token and hmac.compare_digest(encoded, self._token):
            return Client("token", admin=True, limits=self.settings.limits), 0, ""
        record = self.keys.find(key)
        if record is None:
            return None, 401, f"wrong API token: {HOW_TO_SEND}"
        if not record.active:
            return None, 401, (f"API key '{record.name}' was revoked on {record.revoked_at}: "
                               "ask for a new one")
        return self._key_client(record), 0, ""

    def _key_client(self, record: ApiKey) -> Client:
        limits = LimitSettings(**{**vars(self.settings.limits), **record.limits})
        return Client(f"key:{record.name}", record.read_only, record.admin, limits)

    # -- the middleware ----------------------------------------------------------------------

    def __call__(self, environ: dict, start_response):
        op = self.api.operation_for(environ)
        address = environ.get("REMOTE_ADDR", "")
        if op is not None and op.open:
            verdict = self.limiter.peek(f"address:{address}", self.settings.limits)
            return self._pass(environ, start_response, verdict)
        client, status, detail = self._client(environ)
        if client is None:
            return self._refuse(start_response, self._unknown_client(environ, status, detail))
        verdict = self.limiter.hit(client.bucket, client.limits)
        if not verdict.allowed:
            return self._refuse(start_response, Refusal(429, _too_many(verdict), verdict))
        if op is not None:
            refusal = self._check(op, client, environ, verdict)
            if refusal is not None:
                return self._refuse(start_response, refusal)
        environ[ENVIRON_KEY] = Meter(self.limiter, client.bucket, client.limits)
        return self._pass(environ, start_response, verdict)

    def _unknown_client(self, environ: dict, status: int, detail: str) -> Refusal:
        """A request without a valid key: charged to its address (slowing down guessing)."""
        address = environ.get("REMOTE_ADDR", "")
        verdict = self.limiter.hit(f"address:{address}", self.settings.limits)
        if status == 401:
            self.failures.note(address, f"{detail.split(':')[0]} "
                                        f"({environ.get('REQUEST_METHOD')} "
                                        f"{environ.get('PATH_INFO')})")
        if not verdict.allowed:
            return Refusal(429, _too_many(verdict), verdict)
        return Refusal(status, detail, verdict)

    def _check(self, op: Operation, client: Client, environ: dict,
               verdict: Verdict) -> Refusal | None:
        method = environ.get("REQUEST_METHOD", "GET")
        if client.read_only and method not in SAFE_METHODS:
            return Refusal(403, f"this API key is read-only: it may only GET; {method} "
                                f"{environ.get('PATH_INFO')} needs a standard or admin key",
                           verdict)
        if op.admin and not client.admin:
            return Refusal(403, "only an admin key may manage API keys", verdict)
        for meter in op.budget:
            spent = self.limiter.peek(client.bucket, client.limits, meter)
            if not spent.allowed:
                return Refusal(429, _too_many(spent, meter), spent)
        length = environ.get("CONTENT_LENGTH", "")
        if length.isdigit() and int(length) > op.body_limit:
            return Refusal(413, too_large_detail(int(length), op.body_limit), verdict)
        return None

    def _pass(self, environ: dict, start_response, verdict: Verdict):
        extra = verdict.headers() if verdict.limit else []

        def with_headers(status, headers, exc_info=None):
            names = {name.lower() for name, _ in headers}
            headers = list(headers) + [h for h in extra if h[0].lower() not in names]
            return start_response(status, headers, exc_info) if exc_info \
                else start_response(status, headers)

        return self.api.app(environ, with_headers)

    def _refuse(self, start_response, refusal: Refusal):
        self._counted(refusal)
        body = error_bytes(refusal.status, refusal.detail)
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                   *refusal.headers()]
        start_response(f"{refusal.status} {HTTPStatus(refusal.status).phrase}", headers)
        return [body]


@dataclass(frozen=True)
class Refusal:
    """A request the gate refuses: its status, detail and the rate-limit state to show."""

    status: int
    detail: str
    verdict: Verdict

    def headers(self) -> list[tuple[str, str]]:
        out = self.verdict.headers() if self.verdict.limit else []
        if self.status == 401:
            out.append(("WWW-Authenticate", 'Bearer realm="sipassist"'))
        return out


def _too_many(verdict: Verdict, meter: str = "requests") -> str:
    return (f"rate limit exceeded: {verdict.limit} {WORDS[meter]} allowed "
            f"({verdict.window.replace('_', ' ')}); try again in {verdict.retry_after} s")

"""The HTTP server: waitress, with bounded threads, timeouts and body limits.

Why waitress (over cheroot): one event-loop thread reads every request whole (headers and body)
and writes every response, so idle, slow and trickling clients cost a file descriptor and never
a worker thread; a fixed pool of `[api] threads` runs only complete requests. It closes
connections idle for `[api] idle_timeout`, stops accepting at `[api] max_connections` (kept below
the descriptor limit, so the daemon's own files never run out) and polls with poll(), not
select(), so descriptors above 1024 work. Pure Python, no dependencies, in Debian
(python3-waitress). cheroot hands a connection to a worker thread as soon as a byte arrives, so a
few slow clients can hold every thread.

Bodies: as soon as a request's headers are in, the gate screens it (`Gate.screen`): a missing
or wrong key gets 401 and a Content-Length over the route's limit 413 at once, before a byte of
the body is read or buffered. A chunked body is cut at the largest limit. waitress's own errors
(400, 413, 431, 500) come out in the API's JSON error shape too.
"""

from __future__ import annotations

import logging
import resource
import threading
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from waitress import wasyncore
from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import TcpWSGIServer
from waitress.task import ErrorTask
from waitress.utilities import Error

from ..config import ApiSettings
from .errors import error_bytes

log = logging.getLogger(__name__)

# waitress warns "Task queue depth is N" for every request that waits for a thread: under load
# that is a line per request (the journal flood this server replaces). The queue is bounded by
# max_connections anyway.
logging.getLogger("waitress.queue").setLevel(logging.ERROR)

# Descriptors kept for everything else the daemon opens (state files, baresip, JACK, models).
RESERVED_FDS = 256


def raise_fd_limit(wanted: int = 65536) -> int:
    """Raise the soft RLIMIT_NOFILE towards the hard limit; the soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open-file limit from %d to %d: %s", soft, target, exc)
    return soft


class _Refused(Error):
    """A request the gate refused at header time (401, 413, 429, 503)."""

    def __init__(self, status: int, detail: str, headers: list[tuple[str, str]]) -> None:
        super().__init__(detail)
        self.code = status
        self.reason = HTTPStatus(status).phrase
        self.detail = detail
        self.headers = headers


class _JsonErrorTask(ErrorTask):
    """waitress's own error responses, in the API's error shape."""

    def execute(self) -> None:
        error = self.request.error
        detail = getattr(error, "detail", None) or f"{error.reason.lower()}: {error.body}"
        body = error_bytes(error.code, detail)
        self.status = f"{error.code} {error.reason}"
        self.response_headers.append(("Content-Type", "application/json"))
        self.response_headers.extend(getattr(error, "headers", []))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


# screen(method, path, headers, client address, body length) -> a refusal or None
Screen = Callable[[str, str, dict, str, int], Any]


def _server_class(screen: Screen | None) -> type[TcpWSGIServer]:
    class Parser(HTTPRequestParser):
        address = ""

        def parse_header(self, header_plus: bytes) -> None:
            super().parse_header(header_plus)
            if screen is None or self.error is not None:
                return
            if self.content_length > 0 or self.chunked:
                refusal = screen(self.command, self.path, self.headers, self.address,
                                 self.content_length)
                if refusal is not None:
                    self.error = _Refused(refusal.status, refusal.detail, refusal.headers())
                    self.completed = True
                    self.body_rcv = None
                    self.expect_continue = False  # no "100 Continue": the body is unwanted
                    self.content_length = 0  # keeps waitress from replacing our error

    class Channel(HTTPChannel):
        error_task_class = _JsonErrorTask

        def __init__(self, server, sock, addr, adj, map=None) -> None:  # noqa: A002
            super().__init__(server, sock, addr, adj, map)
            address = addr[0] if isinstance(addr, tuple) else str(addr)

            def parser(adj: Adjustments) -> Parser:
                request = Parser(adj)
                request.address = address
                return request

            self.parser_class = parser

    class Server(TcpWSGIServer):
        channel_class = Channel

    return Server


class ApiServer:
    def __init__(self, app, host: str, port: int, settings: ApiSettings | None = None,
                 screen: Screen | None = None) -> None:
        """`screen` (the gate's) sees each request with a body when its headers are in."""
        settings = settings or ApiSettings()
        largest = max(settings.max_json_bytes, settings.max_upload_bytes)
        fds = raise_fd_limit()
        connections = max(10, min(settings.max_connections, fds - RESERVED_FDS))
        if connections < settings.max_connections:
            log.warning("API: at most %d connections (the open-file limit is %d; raise it, "
                        "e.g. LimitNOFILE=65536 in the unit, for [api] max_connections = %d)",
                        connections, fds, settings.max_connections)
        listen = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        adj = Adjustments(
            listen=listen, threads=settings.threads, connection_limit=connections,
            channel_timeout=settings.idle_timeout, cleanup_interval=max(1, min(
                30, int(settings.idle_timeout / 2))),
            backlog=settings.backlog, max_request_body_size=largest + 1,
            max_request_header_size=64 * 1024, asyncore_use_poll=True, ident="sipassist",
            expose_tracebacks=False, clear_untrusted_proxy_headers=False,
        )
        server_class = _server_class(screen)
        self._server = server_class(app, map={}, adj=adj, sockinfo=adj.listen[0])
        self._thread = threading.Thread(target=self._server.run, name="api", daemon=True)
        self.connection_limit = connections

    @property
    def host(self) -> str:
        return self._server.effective_host

    @property
    def port(self) -> int:
        return int(self._server.effective_port)

    def start(self) -> None:
        self._thread.start()
        log.info("API listening on http://%s:%d", self.host, self.port)

    def stop(self) -> None:
        """Close the server; a second call (a test's stop, then the fixture's) does nothing."""
        if not self._thread.is_alive():
            return
        server = self._server
        # Close every socket from inside the loop thread; the loop ends when none is left.
        try:
            server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map))
        except OSError:
            # A wake-up byte was already pending (a response being flushed): the loop ran the
            # close before this one was written, and the pipe it would go to is closed.
            pass
        self._thread.join(5)
        server.task_dispatcher.shutdown(cancel_pending=True, timeout=5)

"""A threaded WSGI server: one slow client never holds up another (wsgiref alone is serial)."""

from __future__ import annotations

import logging
import socketserver
import threading
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

log = logging.getLogger(__name__)


class ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class LoggingHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (stdlib name)
        log.debug("%s %s", self.address_string(), format % args)


class ApiServer:
    def __init__(self, app, host: str, port: int) -> None:
        self._server = make_server(host, port, app, server_class=ThreadingWSGIServer,
                                   handler_class=LoggingHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="api",
                                        daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def start(self) -> None:
        self._thread.start()
        log.info("API listening on http://%s:%d", *self._server.server_address[:2])

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

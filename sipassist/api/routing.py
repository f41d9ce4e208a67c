"""Declaring a route once: Bottle serves it, the gate guards it, OpenAPI documents it.

    @api.post("/call", body=CallRequest, response=CallQueued, summary="Place a call",
              tags=["Calls"], errors=[400, 409, 503])
    def create_call(body: CallRequest) -> dict: ...

The handler gets the path parameters by name, `body` (a validated model, an `UploadedFile`) and
`query` (a validated model) when declared. It returns a model, a dict or list (JSON), bytes (for
a `Binary` response), an iterable of events (for an `EventStream`) or a Bottle response, and
raises `ApiError(status, detail)` for anything the client must fix. See API-HOWTO.md.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import bottle
from pydantic import BaseModel, ValidationError

from . import errors
from .errors import ApiError
from .schema import describe_error, parse_json_object, validate

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
# What a read-only key may do.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DEFAULT_JSON_LIMIT = 1_000_000
DEFAULT_UPLOAD_LIMIT = 25_000_000


# -- what a route may declare -------------------------------------------------------------------

@dataclass(frozen=True)
class Upload:
    """A request body that is a file: raw (`Content-Type: audio/wav`) or multipart.

    `media_types` may hold wildcards ("audio/*"). With `multipart_field`, a
    multipart/form-data body with the file in that field is taken too; its other form fields
    are validated (lax: they are strings on the wire) by the `form` model.
    """

    media_types: tuple[str, ...]
    multipart_field: str | None = "file"
    form: type[BaseModel] | None = None
    max_bytes: int | None = None  # None: [api] max_upload_bytes
    description: str = ""


@dataclass(frozen=True)
class UploadedFile:
    data: bytes
    content_type: str
    filename: str | None = None
    form: BaseModel | None = None


@dataclass(frozen=True)
class Binary:
    """A response that is not JSON: audio/wav, text/html, ..."""

    media_type: str
    description: str = ""


@dataclass(frozen=True)
class EventStream:
    """A Server-Sent Events response; each event's `data` is JSON of the `event` model."""

    event: type[BaseModel] | None = None
    description: str = ""


@dataclass(frozen=True)
class Event:
    """One server-sent event: `data` (a model, dict or list becomes JSON; a str goes as is)."""

    data: Any
    event: str | None = None
    id: str | None = None

    def encode(self) -> bytes:
        data = self.data
        if isinstance(data, BaseModel):
            data = data.model_dump_json()
        elif not isinstance(data, str):
            data = json.dumps(data)
        lines = []
        if self.event:
            lines.append(f"event: {self.event}")
        if self.id:
            lines.append(f"id: {self.id}")
        lines += [f"data: {line}" for line in data.split("\n")]
        return ("\n".join(lines) + "\n\n").encode()


@dataclass(frozen=True)
class Operation:
    """One declared route, as the gate and the OpenAPI document see it."""

    method: str
    rule: str  # Bottle's form: /call/<call_id>
    handler: Callable[..., Any]
    summary: str
    description: str = ""
    tags: tuple[str, ...] = ()
    body: type[BaseModel] | Upload | None = None
    query: type[BaseModel] | None = None
    response: Any = None  # a model, list[Model], Binary, EventStream or None (free JSON)
    status: int = 200
    errors: tuple[int, ...] = ()
    open: bool = False  # no key needed, never rate limited (GET /health, the docs)
    admin: bool = False  # an admin key only
    budget: tuple[str, ...] = ()  # "tokens", "audio": refused early once that budget is spent
    body_limit: int = DEFAULT_JSON_LIMIT
    allow_empty_body: bool = False
    examples: dict[str, Any] = field(default_factory=dict)  # "request"/"response" examples

    @property
    def path(self) -> str:
        """The OpenAPI form: /call/{call_id}."""
        return openapi_path(self.rule)

    @property
    def operation_id(self) -> str:
        return self.handler.__name__


def openapi_path(rule: str) -> str:
    return re.sub(r"<([A-Za-z_][A-Za-z0-9_]*)(?::[^>]*)?>", r"{\1}", rule)


def path_parameters(rule: str) -> list[str]:
    return re.findall(r"<([A-Za-z_][A-Za-z0-9_]*)(?::[^>]*)?>", rule)


# -- the application ----------------------------------------------------------------------------

class Api:
    """The Bottle app plus the declared operations; `context` reaches the validators."""

    def __init__(self, *, json_limit: int = DEFAULT_JSON_LIMIT,
                 upload_limit: int = DEFAULT_UPLOAD_LIMIT,
                 context: dict[str, Any] | None = None) -> None:
        self.app = bottle.Bottle()
        errors.install(self.app)
        self.json_limit = json_limit
        self.upload_limit = upload_limit
        self.context = dict(context or {})
        self.operations: list[Operation] = []
        self._by_route: dict[tuple[str, str], Operation] = {}

    # Decorators: api.get(path, **spec), api.post(...), ...
    def get(self, rule: str, **spec: Any): return self.route("GET", rule, **spec)
    def post(self, rule: str, **spec: Any): return self.route("POST", rule, **spec)
    def put(self, rule: str, **spec: Any): return self.route("PUT", rule, **spec)
    def patch(self, rule: str, **spec: Any): return self.route("PATCH", rule, **spec)
    def delete(self, rule: str, **spec: Any): return self.route("DELETE", rule, **spec)

    def route(self, method: str, rule: str, *, summary: str, **spec: Any):
        if method not in METHODS:
            raise ValueError(f"method {method} is not one of {METHODS}")

        def declare(handler: Callable[..., Any]) -> Callable[..., Any]:
            body = spec.get("body")
            limit = (body.max_bytes or self.upload_limit) if isinstance(body, Upload) \
                else self.json_limit
            op = Operation(method=method, rule=rule, handler=handler, summary=summary,
                           description=spec.pop("description", None) or (handler.__doc__ or "")
                           .strip(), tags=tuple(spec.pop("tags", ())),
                           errors=tuple(spec.pop("errors", ())), body_limit=limit, **spec)
            if any(o.operation_id == op.operation_id for o in self.operations):
                raise ValueError(f"two routes are named {op.operation_id}: rename a handler")
            self.operations.append(op)
            self._by_route[(method, rule)] = op
            self.app.route(rule, method, self._serve(op), name=op.operation_id)
            return handler

        return declare

    def operation_for(self, environ: dict) -> Operation | None:
        """The operation a request is for, or None (a 404 or 405 to come)."""
        try:
            route, _ = self.app.router.match(environ)
        except bottle.HTTPError:
            return None
        return self._by_route.get((route.method, route.rule))

    # -- serving one request ----------------------------------------------------------------

    def _serve(self, op: Operation) -> Callable[..., Any]:
        def callback(**path_args: Any) -> Any:
            kwargs = dict(path_args)
            if op.query is not None:
                kwargs["query"] = self._query(op.query)
            if isinstance(op.body, Upload):
                kwargs["body"] = self._upload(op)
            elif op.body is not None:
                raw = read_body(op.body_limit)
                data = parse_json_object(raw, op.allow_empty_body)
                kwargs["body"] = validate(op.body, data, self.context)
            return self._respond(op, op.handler(**kwargs))

        return callback

    def _query(self, model: type[BaseModel]) -> BaseModel:
        query = bottle.request.query
        data = {key: query.getunicode(key) for key in query.keys()
                if key in model.model_fields}
        try:
            return model.model_validate(data, context=self.context)
        except ValidationError as exc:
            raise ApiError(400, describe_error(exc.errors()[0])) from None

    def _upload(self, op: Operation) -> UploadedFile:
        spec: Upload = op.body  # type: ignore[assignment]
        content_type = bottle.request.environ.get("CONTENT_TYPE", "")
        media_type = content_type.split(";")[0].strip().lower()
        if spec.multipart_field and media_type == "multipart/form-data":
            check_length(op.body_limit)
            upload = bottle.request.files.get(spec.multipart_field)
            if upload is None:
                raise ApiError(400, f"the multipart body has no '{spec.multipart_field}' "
                                    "field: send the file in it")
            data = upload.file.read(op.body_limit + 1)
            form = None
            if spec.form is not None:
                fields = {k: bottle.request.forms.getunicode(k) for k in bottle.request.forms}
                try:
                    form = spec.form.model_validate(fields, context=self.context)
                except ValidationError as exc:
                    raise ApiError(400, describe_error(exc.errors()[0])) from None
            type_ = (upload.content_type or "application/octet-stream").lower()
            return UploadedFile(data, type_, upload.raw_filename, form)
        if not any(fnmatch.fnmatch(media_type, accepted) for accepted in spec.media_types):
            accepted = list(spec.media_types)
            if spec.multipart_field:
                accepted.append(f"multipart/form-data with the file in '{spec.multipart_field}'")
            raise ApiError(415, f"Content-Type '{media_type or 'none'}' is not accepted here; "
                                f"send {', '.join(accepted)}")
        data = read_body(op.body_limit)
        if not data:
            raise ApiError(400, "request body is empty: send the file")
        return UploadedFile(data, media_type)

    def _respond(self, op: Operation, result: Any) -> Any:
        if isinstance(result, bottle.BaseResponse):
            return result
        response = bottle.response
        response.status = op.status
        if isinstance(op.response, EventStream) and not isinstance(result, (dict, list)):
            response.content_type = "text/event-stream"
            response.set_header("Cache-Control", "no-cache")
            response.set_header("X-Accel-Buffering", "no")
            return _events(result)
        if isinstance(result, (bytes, str)):
            if isinstance(op.response, Binary):
                response.content_type = op.response.media_type
            return result
        if isinstance(result, BaseModel):
            payload = result.model_dump_json().encode()
        else:
            payload = json.dumps(result).encode()
        response.content_type = "application/json"
        return payload


def _events(events: Iterable[Any]) -> Iterator[bytes]:
    for item in events:
        yield item.encode() if isinstance(item, Event) else Event(item).encode()


# -- bounded body reading -----------------------------------------------------------------------

def content_length(environ: dict) -> int | None:
    """The declared body length; None when the body is chunked or absent."""
    value = environ.get("CONTENT_LENGTH", "")
    if not value:
        return None
    try:
        length = int(value)
    except ValueError:
        raise ApiError(400, "Content-Length is not a number") from None
    return max(length, 0)


def too_large_detail(length: int, limit: int) -> str:
    return (f"request body is {length} bytes; this endpoint takes at most {limit} bytes "
            "([api] max_json_bytes / max_upload_bytes)")


def too_large(length: int, limit: int) -> ApiError:
    return ApiError(413, too_large_detail(length, limit))


def check_length(limit: int) -> None:
    length = content_length(bottle.request.environ)
    if length is not None and length > limit:
        raise too_large(length, limit)


def read_body(limit: int) -> bytes:
    """The body, never reading more than `limit` + 1 bytes of it (413 beyond)."""
    environ = bottle.request.environ
    length = content_length(environ)
    if length is not None and length > limit:
        raise too_large(length, limit)
    stream = environ["wsgi.input"]
    if length is not None:
        return stream.read(length) if length else b""
    if "chunked" not in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        return b""
    data = stream.read(limit + 1)  # the server has de-chunked it
    if len(data) > limit:
        raise too_large(len(data), limit)
    return data


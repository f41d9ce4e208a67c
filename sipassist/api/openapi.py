"""GET /openapi.json (OpenAPI 3.1, made from the declared routes) and GET /docs (Swagger UI).

Swagger UI comes from `offapi`, which inlines its scripts and styles into one HTML page: the page
loads nothing from a CDN, so /docs works on a box with no internet.
"""

from __future__ import annotations

import gzip
import threading
import typing
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from .. import __version__
from .routing import Api, Binary, EventStream, Operation, Upload, path_parameters

REF = "#/components/schemas/{model}"
ERROR_SCHEMA = {
    "type": "object",
    "required": ["detail", "error"],
    "properties": {
        "detail": {"type": "string", "description": "What went wrong and how to fix it."},
        "error": {
            "type": "object",
            "required": ["statusCode", "name", "message"],
            "properties": {"statusCode": {"type": "integer"}, "name": {"type": "string"},
                           "message": {"type": "string"}},
        },
    },
    "examples": [{"detail": "Tool 'INVALID' not found. Use GET /tools to list available tools.",
                  "error": {"statusCode": 404, "name": "NotFoundError",
                            "message": "Tool 'INVALID' not found. Use GET /tools to list "
                                       "available tools."}}],
}
ERROR_TEXT = {400: "Bad request: `detail` names the field and the fix",
              401: "No API key, or a wrong or revoked one",
              403: "The key may not do this (read-only, or not an admin key)",
              404: "Not found", 405: "Method not allowed", 409: "Conflict",
              413: "Request body too large", 415: "Unsupported Content-Type",
              429: "Rate limit exceeded: wait `Retry-After` seconds",
              500: "Internal error", 503: "Busy or unavailable: try again later"}
RATE_HEADERS = {
    "X-RateLimit-Limit": "Requests allowed in the current window",
    "X-RateLimit-Remaining": "Requests left in the current window",
    "X-RateLimit-Reset": "When the window resets (epoch seconds)",
}
DESCRIPTION = """The sipassist appliance's REST API.

Send an API key as `api-key: <key>` or `Authorization: Bearer <key>` (create one with
`sipassist keys create NAME`); `GET /health` and these docs need none. Every response carries
`X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset`; past a limit the answer is
429 with `Retry-After`. Errors are `{"detail": "...", "error": {"statusCode", "name",
"message"}}`."""


def _models(api: Api) -> list[tuple[type[BaseModel], str]]:
    found: list[tuple[type[BaseModel], str]] = []

    def add(model: Any, mode: str) -> None:
        if isinstance(model, type) and issubclass(model, BaseModel) and (model, mode) not in found:
            found.append((model, mode))

    for op in api.operations:
        if isinstance(op.body, Upload):
            add(op.body.form, "validation")
        else:
            add(op.body, "validation")
        add(op.query, "validation")
        response = op.response.event if isinstance(op.response, EventStream) else op.response
        for arg in typing.get_args(response) or (response,):
            add(arg, "serialization")
    return found


def document(api: Api, title: str = "sipassist API") -> dict[str, Any]:
    models = _models(api)
    refs, top = models_json_schema(models, ref_template=REF) if models else ({}, {})
    schemas = dict(top.get("$defs", {}))
    schemas["Error"] = ERROR_SCHEMA

    def schema_of(model: Any, mode: str) -> dict[str, Any]:
        if model is None:
            return {}
        if typing.get_origin(model) is list:
            return {"type": "array", "items": schema_of(typing.get_args(model)[0], mode)}
        return refs[(model, mode)]

    paths: dict[str, dict[str, Any]] = {}
    for op in api.operations:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, schema_of, schemas)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": __version__, "description": DESCRIPTION,
                 "license": {"name": "GPL-3.0-or-later", "identifier": "GPL-3.0-or-later"}},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "ApiKey": {"type": "apiKey", "in": "header", "name": "api-key",
                           "description": "A key from `sipassist keys create` (seed 000 style)"},
                "Bearer": {"type": "http", "scheme": "bearer",
                           "description": "The same key as a bearer token (seed 002 style)"},
            },
            "headers": {name: {"description": text, "schema": {"type": "integer"}}
                        for name, text in RATE_HEADERS.items()},
        },
        "security": [{"ApiKey": []}, {"Bearer": []}],
    }


def _operation(op: Operation, schema_of, schemas: dict) -> dict[str, Any]:
    out: dict[str, Any] = {"operationId": op.operation_id, "summary": op.summary}
    if op.description:
        out["description"] = op.description
    if op.tags:
        out["tags"] = list(op.tags)
    parameters = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                  for name in path_parameters(op.rule)]
    if op.query is not None:
        query_schema = op.query.model_json_schema(ref_template=REF)
        required = set(query_schema.get("required", []))
        for name, prop in query_schema.get("properties", {}).items():
            parameter = {"name": name, "in": "query", "required": name in required,
                         "schema": {k: v for k, v in prop.items() if k != "description"}}
            if prop.get("description"):
                parameter["description"] = prop["description"]
            parameters.append(parameter)
    if parameters:
        out["parameters"] = parameters
    if op.body is not None:
        out["requestBody"] = _request_body(op, schema_of)
    out["responses"] = _responses(op, schema_of)
    if op.open:
        out["security"] = []
    return out


def _request_body(op: Operation, schema_of) -> dict[str, Any]:
    if isinstance(op.body, Upload):
        spec = op.body
        binary = {"type": "string", "format": "binary"}
        content = {media: {"schema": binary} for media in spec.media_types}
        if spec.multipart_field:
            form: dict[str, Any] = {"type": "object",
                                    "properties": {spec.multipart_field: binary},
                                    "required": [spec.multipart_field]}
            if spec.form is not None:
                form_schema = spec.form.model_json_schema(ref_template=REF)
                form["properties"].update(form_schema.get("properties", {}))
            content["multipart/form-data"] = {"schema": form}
        return {"required": True, "content": content,
                "description": spec.description or f"at most {op.body_limit} bytes"}
    media: dict[str, Any] = {"schema": schema_of(op.body, "validation")}
    if "request" in op.examples:
        media["example"] = op.examples["request"]
    return {"required": not op.allow_empty_body, "content": {"application/json": media}}


def _responses(op: Operation, schema_of) -> dict[str, Any]:
    headers = {name: {"$ref": f"#/components/headers/{name}"} for name in RATE_HEADERS}
    ok: dict[str, Any] = {"description": "OK", "headers": headers}
    if isinstance(op.response, Binary):
        ok["description"] = op.response.description or op.response.media_type
        ok["content"] = {op.response.media_type: {"schema": {"type": "string"}}}
    elif isinstance(op.response, EventStream):
        ok["description"] = op.response.description or "Server-Sent Events"
        media: dict[str, Any] = {"schema": {"type": "string"}}
        if op.response.event is not None:
            media["x-event-data"] = schema_of(op.response.event, "serialization")
        ok["content"] = {"text/event-stream": media}
    else:
        media = {"schema": schema_of(op.response, "serialization")}
        if "response" in op.examples:
            media["example"] = op.examples["response"]
        ok["content"] = {"application/json": media}
    statuses = set(op.errors)
    if op.body is not None or op.query is not None:
        statuses.add(400)
    if op.body is not None:
        statuses.add(413)
    if isinstance(op.body, Upload):
        statuses.add(415)
    if not op.open:
        statuses |= {401, 403, 429}
    responses: dict[str, Any] = {str(op.status): ok}
    for status in sorted(statuses):
        responses[str(status)] = {
            "description": ERROR_TEXT.get(status, "Error"),
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    return responses


class DocsPage:
    """The Swagger UI page, rendered once (about 2 MB, 0.5 MB gzipped)."""

    def __init__(self, spec_url: str = "/openapi.json") -> None:
        self._spec_url = spec_url
        self._lock = threading.Lock()
        self._page: tuple[bytes, bytes] | None = None

    def get(self) -> tuple[bytes, bytes]:
        with self._lock:
            if self._page is None:
                from offapi import OpenAPITemplate

                html = OpenAPITemplate.SWAGGER.value.format(spec_url=self._spec_url).encode()
                self._page = (html, gzip.compress(html, 6))
            return self._page


def install(api: Api) -> None:
    """Declare GET /openapi.json and GET /docs (both open: they hold no secrets)."""
    import bottle

    cache: dict[str, bytes] = {}
    lock = threading.Lock()
    page = DocsPage()

    @api.get("/openapi.json", summary="This API as an OpenAPI 3.1 document", open=True,
             tags=["Documentation"])
    def openapi_document() -> bytes:
        with lock:
            if "doc" not in cache:
                import json

                cache["doc"] = json.dumps(document(api)).encode()
        bottle.response.content_type = "application/json"
        return cache["doc"]

    @api.get("/docs", summary="Interactive documentation (Swagger UI, works offline)",
             open=True, tags=["Documentation"], response=Binary("text/html"))
    def swagger_ui() -> bytes:
        html, compressed = page.get()
        bottle.response.set_header("Cache-Control", "max-age=3600")
        bottle.response.set_header("Vary", "Accept-Encoding")
        if "gzip" in bottle.request.environ.get("HTTP_ACCEPT_ENCODING", ""):
            bottle.response.set_header("Content-Encoding", "gzip")
            return compressed
        return html

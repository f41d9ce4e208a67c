"""`/v1/knowledge`: tables of rows searched by meaning (the engine is sipassist/knowledge/)."""

from __future__ import annotations

import functools
import json
from typing import Any

import bottle

from ..config import KnowledgeSettings
from ..knowledge import (AlreadyExists, InvalidInput, KnowledgeBase, KnowledgeError,
                         LimitExceeded, NewRow, NotFound)
from ..knowledge.splitting import FORMATS, format_of, split
from ..models import ModelNotFound
from .body import json_object, text
from .errors import ApiError

STATUS = {InvalidInput: 400, NotFound: 404, AlreadyExists: 409, LimitExceeded: 413}
MAX_PAGE = 1000


def _answering(handler):
    """The engine's refusals as API errors with the same words."""
    @functools.wraps(handler)
    def wrapper(*args, **kwargs):
        try:
            return handler(*args, **kwargs)
        except KnowledgeError as exc:
            raise ApiError(STATUS.get(type(exc), 400), str(exc)) from None
        except ModelNotFound as exc:
            raise ApiError(503, f"the knowledge base cannot embed text: {exc}") from None
    return wrapper


def _json_list(items: list) -> str:
    bottle.response.content_type = "application/json"
    return json.dumps(items)


def _query_int(name: str, default: int, low: int, high: int) -> int:
    raw = bottle.request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"{name}: write a whole number, not {raw!r}") from None
    if not low <= value <= high:
        raise ApiError(400, f"{name}: write a number from {low} to {high}")
    return value


def _read_body(limit: int) -> bytes:
    if bottle.request.content_length > limit:
        raise ApiError(413, f"the request body is {bottle.request.content_length} bytes, more than"
                            f" knowledge.max_upload_bytes = {limit}: send fewer rows at a time")
    data = bottle.request.body.read(limit + 1)
    if len(data) > limit:  # chunked, without a Content-Length
        raise ApiError(413, f"the request body is more than knowledge.max_upload_bytes = {limit}")
    return data


def _json_rows(data: dict[str, Any]) -> list[NewRow]:
    rows = data.get("rows")
    if not isinstance(rows, list) or not rows:
        raise ApiError(400, 'rows: write a list of rows, e.g. [{"content": "We close at five on'
                            ' Fridays.", "metadata": {"topic": "hours"}}]')
    new_rows = []
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ApiError(400, f'rows[{index}]: write an object {{"content", "metadata"?}}')
        unknown = sorted(set(row) - {"content", "metadata"})
        if unknown:
            raise ApiError(400, f"rows[{index}]: unknown field {unknown[0]!r}; a row has content"
                                " and metadata")
        metadata = row.get("metadata", {})
        new_rows.append(NewRow(row.get("content"), {} if metadata is None else metadata))
    return new_rows


def _document_rows(raw: bytes, kind: str | None, source: str, limits: KnowledgeSettings,
                   described: str) -> list[NewRow]:
    if kind is None:
        raise ApiError(415, f"{described}: send JSON rows, or a document as text/plain,"
                            " text/markdown or text/csv (or a .txt, .md or .csv file in the"
                            " form field 'file')")
    try:
        document = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ApiError(400, "the document is not UTF-8 text: save it as UTF-8 and send it again")\
            from None
    return [NewRow(content, metadata)
            for content, metadata in split(document, kind, limits.max_row_chars, source)]


def _new_rows(limits: KnowledgeSettings) -> list[NewRow]:
    """Rows from the request: JSON {"rows": [...]}, a raw document, or an uploaded file."""
    media_type = bottle.request.content_type.split(";")[0].strip().lower()
    if media_type == "multipart/form-data":
        _read_body(limits.max_upload_bytes)
        upload = bottle.request.files.get("file")
        if upload is None:
            raise ApiError(400, "send the document in the form field 'file', e.g."
                                " curl -F file=@faq.md")
        name = upload.raw_filename or ""
        return _document_rows(upload.file.read(), format_of(name, upload.content_type), name,
                              limits, f"file {name!r}")
    raw = _read_body(limits.max_upload_bytes)
    if media_type in ("", "application/json"):
        return _json_rows(json_object({"rows"}))
    source = bottle.request.query.get("source", "")
    return _document_rows(raw, format_of(media_type=media_type), source, limits,
                          f"Content-Type {media_type}")


def install(app: bottle.Bottle, knowledge: KnowledgeBase) -> None:
    limits = knowledge.limits

    @app.get("/v1/knowledge")
    @_answering
    def list_tables():
        return _json_list(knowledge.tables())

    @app.post("/v1/knowledge")
    @_answering
    def create_table():
        data = json_object({"name", "description"})
        name = text(data, "name", required=True, max_length=200)
        description = text(data, "description", max_length=1000) or ""
        table = knowledge.create(name, description)
        bottle.response.status = 201
        return table

    @app.get("/v1/knowledge/<name>")
    @_answering
    def get_table(name: str):
        return knowledge.table(name)

    @app.delete("/v1/knowledge/<name>")
    @_answering
    def delete_table(name: str):
        knowledge.drop(name)
        bottle.response.status = 204
        return ""

    @app.post("/v1/knowledge/<name>/rows")
    @_answering
    def add_rows(name: str):
        knowledge.table(name)  # 404 before reading a large body
        added = knowledge.add(name, _new_rows(limits))
        bottle.response.status = 201
        return {"added": len(added), "rows": [row.to_json() for row in added],
                "table": knowledge.table(name)}

    @app.get("/v1/knowledge/<name>/rows")
    @_answering
    def list_rows(name: str):
        offset = _query_int("offset", 0, 0, 10**9)
        limit = _query_int("limit", 100, 1, MAX_PAGE)
        rows, total = knowledge.rows(name, offset, limit)
        return {"rows": [row.to_json() for row in rows], "total": total, "offset": offset,
                "limit": limit}

    @app.delete("/v1/knowledge/<name>/rows/<row_id>")
    @_answering
    def delete_row(name: str, row_id: str):
        knowledge.remove_row(name, row_id)
        bottle.response.status = 204
        return ""

    @app.post("/v1/knowledge/<name>/query")
    @_answering
    def query(name: str):
        knowledge.table(name)
        data = json_object({"query", "limit", "min_score"})
        hits = knowledge.search(name, data.get("query"), data.get("limit", 5),
                                data.get("min_score", 0.0))
        return _json_list([hit.to_json() for hit in hits])

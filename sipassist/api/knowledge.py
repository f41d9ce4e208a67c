"""`/v1/knowledge`: tables of rows searched by meaning (the engine is sipassist/knowledge/)."""

from __future__ import annotations

import functools
from typing import Any

from pydantic import Field

from ..knowledge import (AlreadyExists, InvalidInput, KnowledgeBase, KnowledgeError,
                         LimitExceeded, NewRow, NotFound)
from ..knowledge.base import MAX_DESCRIPTION, MAX_LIMIT, MAX_QUERY_CHARS
from ..knowledge.splitting import format_of, split
from ..models import ModelNotFound
from .errors import ApiError
from .routing import Api, Upload, UploadedFile
from .schema import RequestModel, ResponseModel, parse_json_object, validate
from .services import Services

TAGS = ["Knowledge Base"]
STATUS = {InvalidInput: 400, NotFound: 404, AlreadyExists: 409, LimitExceeded: 413}
DOCUMENT_TYPES = ("text/plain", "text/markdown", "text/x-markdown", "text/csv")
MAX_PAGE = 1000


# -- schemas -------------------------------------------------------------------------------------

class KnowledgeTableNew(RequestModel):
    name: str = Field(description="1 to 64 lowercase letters, digits, '_' or '-'",
                      examples=["clinic"])
    description: str = Field("", max_length=MAX_DESCRIPTION)


class KnowledgeRowNew(RequestModel):
    content: str = Field(description="The text searched and returned", min_length=1)
    metadata: dict[str, Any] | None = Field(None, description="Any JSON object, returned as is")


class KnowledgeRowsNew(RequestModel):
    rows: list[KnowledgeRowNew] = Field(min_length=1)
    model_config = {"json_schema_extra": {"examples": [{"rows": [
        {"content": "We close at five on Fridays.", "metadata": {"topic": "hours"}}]}]}}


class KnowledgeQuery(RequestModel):
    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS)
    limit: int = Field(5, ge=1, le=MAX_LIMIT)
    min_score: float = Field(0.0, ge=-1.0, le=1.0,
                             description="Leave out rows less similar than this (cosine, -1..1)")


class KnowledgeRowsPaging(RequestModel):
    offset: int = Field(0, ge=0)
    limit: int = Field(100, ge=1, le=MAX_PAGE)


class KnowledgeTable(ResponseModel):
    name: str
    description: str
    rows: int
    created_at: str
    updated_at: str


class KnowledgeRow(ResponseModel):
    id: str
    content: str
    metadata: dict[str, Any]
    created_at: str


class KnowledgeRowsAdded(ResponseModel):
    added: int
    rows: list[KnowledgeRow]
    table: KnowledgeTable


class KnowledgeRowsPage(ResponseModel):
    rows: list[KnowledgeRow]
    total: int
    offset: int
    limit: int


class KnowledgeHit(ResponseModel):
    id: str
    content: str
    metadata: dict[str, Any]
    score: float = Field(description="Cosine similarity to the query, 1 = the same meaning")


# -- routes --------------------------------------------------------------------------------------

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


def _rows_of(upload: UploadedFile, max_chars: int, context: dict) -> list[NewRow]:
    """JSON {"rows": [...]}, or a text/Markdown/CSV document split into rows."""
    if upload.content_type == "application/json" and upload.filename is None:
        body = validate(KnowledgeRowsNew, parse_json_object(upload.data), context)
        return [NewRow(row.content, row.metadata or {}) for row in body.rows]
    kind = format_of(upload.filename or "", upload.content_type)
    if kind is None:
        raise ApiError(415, f"file {upload.filename!r} ({upload.content_type}): send a .txt, .md"
                            " or .csv file, or JSON rows")
    try:
        document = upload.data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ApiError(400, "the document is not UTF-8 text: save it as UTF-8") from None
    return [NewRow(content, metadata) for content, metadata
            in split(document, kind, max_chars, upload.filename or "")]


def install(api: Api, services: Services) -> None:
    kb = services.knowledge
    limits = kb.limits if kb is not None else services.settings.knowledge

    def ready() -> KnowledgeBase:
        if kb is None:
            raise ApiError(503, "the knowledge base is not running on this box")
        return kb

    @api.get("/v1/knowledge", summary="List knowledge tables", tags=TAGS,
             response=list[KnowledgeTable])
    @_answering
    def knowledge_list() -> list:
        return ready().tables()

    @api.post("/v1/knowledge", summary="Create a new table", tags=TAGS, body=KnowledgeTableNew,
              response=KnowledgeTable, status=201, errors=[400, 409, 413])
    @_answering
    def knowledge_create(body: KnowledgeTableNew) -> dict:
        return ready().create(body.name, body.description)

    @api.get("/v1/knowledge/<name>", summary="Get a table", tags=TAGS, response=KnowledgeTable,
             errors=[404])
    @_answering
    def knowledge_get(name: str) -> dict:
        return ready().table(name)

    @api.delete("/v1/knowledge/<name>", summary="Delete a table and its rows", tags=TAGS,
                status=204, errors=[404])
    @_answering
    def knowledge_delete(name: str) -> str:
        ready().drop(name)
        return ""

    @api.post("/v1/knowledge/<name>/rows", summary="Add rows to a table", tags=TAGS,
              body=Upload(("application/json", *DOCUMENT_TYPES), multipart_field="file",
                          max_bytes=limits.max_upload_bytes),
              response=KnowledgeRowsAdded, status=201, errors=[400, 404, 413, 503])
    @_answering
    def knowledge_add_rows(name: str, body: UploadedFile) -> dict:
        """JSON `{"rows": [{"content", "metadata"?}]}`, or a document split into rows: text by
        paragraph, Markdown by headed section, CSV by row (a `content` column is the row, the
        other columns its metadata). All rows are added, or none."""
        ready().table(name)
        added = ready().add(name, _rows_of(body, limits.max_row_chars, api.context))
        return {"added": len(added), "rows": [row.to_json() for row in added],
                "table": ready().table(name)}

    @api.get("/v1/knowledge/<name>/rows", summary="List a table's rows", tags=TAGS, query=KnowledgeRowsPaging,
             response=KnowledgeRowsPage, errors=[400, 404])
    @_answering
    def knowledge_rows(name: str, query: KnowledgeRowsPaging) -> dict:
        rows, total = ready().rows(name, query.offset, query.limit)
        return {"rows": [row.to_json() for row in rows], "total": total,
                "offset": query.offset, "limit": query.limit}

    @api.delete("/v1/knowledge/<name>/rows/<row_id>", summary="Delete a row", tags=TAGS,
                status=204, errors=[404])
    @_answering
    def knowledge_delete_row(name: str, row_id: str) -> str:
        ready().remove_row(name, row_id)
        return ""

    @api.post("/v1/knowledge/<name>/query", summary="Semantic search on a table", tags=TAGS,
              body=KnowledgeQuery, response=list[KnowledgeHit], errors=[400, 404, 503])
    @_answering
    def knowledge_query(name: str, body: KnowledgeQuery) -> list:
        """The rows closest in meaning to `query`, best first."""
        return [hit.to_json() for hit in ready().search(name, body.query, body.limit,
                                                   body.min_score)]

"""`/v1/knowledge` over real HTTP on loopback, with the real embedding model and files."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

from sipassist.config import KnowledgeSettings
from sipassist.knowledge import Embedder, KnowledgeBase
from sipassist.models import resolve_embedding_model

LIMITS = KnowledgeSettings(max_tables=3, max_rows=20, max_row_chars=300,
                           max_upload_bytes=20_000)
ROWS = [
    {"content": "We are open Monday to Friday from 8 am to 6 pm.", "metadata": {"topic": "hours"}},
    {"content": "Appointments cancelled less than 24 hours ahead cost 30 dollars.",
     "metadata": {"topic": "cancel"}},
    {"content": "Free parking is available in the lot behind the building."},
]
MARKDOWN = """# Clinic
## Opening hours
Monday to Friday, 8 am to 6 pm.

## Parking
Free, in the lot behind the building.
"""


class Quiet(WSGIRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


class Client:
    def __init__(self, url: str) -> None:
        self.url = url

    def send(self, method: str, path: str, body: object = None, data: bytes | None = None,
             content_type: str = "application/json") -> tuple[int, object]:
        if body is not None:
            data = json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    def refused(self, status: int, method: str, path: str, **kwargs) -> str:
        got, answer = self.send(method, path, **kwargs)
        assert got == status, (got, answer)
        assert isinstance(answer["detail"], str) and answer["detail"], answer
        return answer["detail"]


def multipart(field: str, filename: str, data: bytes, media_type: str) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\";"
            f" filename=\"{filename}\"\r\nContent-Type: {media_type}\r\n\r\n").encode() \
        + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


@pytest.fixture(scope="module")
def embedder(models_dir: Path) -> Embedder:
    return Embedder(lambda: resolve_embedding_model(models_dir))


@pytest.fixture
def client(tmp_path: Path, embedder: Embedder) -> Iterator[Client]:
    from sipassist.api import knowledge
    from sipassist.api.routing import Api

    api = Api()
    kb = KnowledgeBase(tmp_path / "knowledge", embedder, LIMITS)
    knowledge.install(api, SimpleNamespace(knowledge=kb))
    server = make_server("127.0.0.1", 0, api.app, handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Client(f"http://127.0.0.1:{server.server_address[1]}")
    server.shutdown()
    server.server_close()
    thread.join(5)


def conforms(answer: object, schema: object) -> None:
    """The answer is what /openapi.json declares for the route (strict: no coercion)."""
    from pydantic import TypeAdapter

    TypeAdapter(schema).validate_python(answer, strict=True)


def test_table_life(client: Client) -> None:
    from sipassist.api import knowledge as routes

    status, table = client.send("POST", "/v1/knowledge",
                                {"name": "clinic", "description": "Front desk"})
    assert status == 201
    assert table["name"] == "clinic" and table["description"] == "Front desk"
    assert table["rows"] == 0 and table["created_at"].endswith("Z")
    conforms(table, routes.KnowledgeTable)
    assert client.send("GET", "/v1/knowledge/clinic") == (200, table)
    assert client.send("GET", "/v1/knowledge") == (200, [table])

    status, added = client.send("POST", "/v1/knowledge/clinic/rows", {"rows": ROWS})
    assert status == 201 and added["added"] == 3 and added["table"]["rows"] == 3
    assert [row["metadata"] for row in added["rows"]] == [{"topic": "hours"},
                                                          {"topic": "cancel"}, {}]
    ids = [row["id"] for row in added["rows"]]
    conforms(added, routes.KnowledgeRowsAdded)
    conforms(client.send("GET", "/v1/knowledge")[1], list[routes.KnowledgeTable])

    status, hits = client.send("POST", "/v1/knowledge/clinic/query",
                               {"query": "Is there a fee if I cancel the day before?"})
    assert status == 200 and hits[0]["id"] == ids[1]
    assert set(hits[0]) == {"id", "content", "metadata", "score"}
    conforms(hits, list[routes.KnowledgeHit])
    assert hits[0]["content"] == ROWS[1]["content"] and hits[0]["metadata"] == {"topic": "cancel"}
    assert [h["score"] for h in hits] == sorted((h["score" ] for h in hits), reverse=True)
    status, hits = client.send("POST", "/v1/knowledge/clinic/query",
                               {"query": "where do I leave my car", "limit": 1,
                                "min_score": 0.25})  # ~0.29; the other rows < 0.1
    assert status == 200 and [h["id"] for h in hits] == [ids[2]]

    status, page = client.send("GET", "/v1/knowledge/clinic/rows?offset=1&limit=1")
    assert status == 200 and page["total"] == 3 and [r["id"] for r in page["rows"]] == [ids[1]]
    assert (page["offset"], page["limit"]) == (1, 1)
    conforms(page, routes.KnowledgeRowsPage)

    assert client.send("DELETE", f"/v1/knowledge/clinic/rows/{ids[1]}")[0] == 204
    client.refused(404, "DELETE", f"/v1/knowledge/clinic/rows/{ids[1]}")
    status, page = client.send("GET", "/v1/knowledge/clinic/rows")
    assert [r["id"] for r in page["rows"]] == [ids[0], ids[2]]

    assert client.send("DELETE", "/v1/knowledge/clinic")[0] == 204
    client.refused(404, "GET", "/v1/knowledge/clinic")
    assert client.send("GET", "/v1/knowledge") == (200, [])


def test_uploads_are_split_into_rows(client: Client) -> None:
    client.send("POST", "/v1/knowledge", {"name": "docs"})
    status, added = client.send("POST", "/v1/knowledge/docs/rows", data=MARKDOWN.encode(),
                                content_type="text/markdown; charset=utf-8")
    assert status == 201, added
    assert [(r["content"], r["metadata"]) for r in added["rows"]] == [
        ("Opening hours: Monday to Friday, 8 am to 6 pm.", {"section": "Clinic > Opening hours"}),
        ("Parking: Free, in the lot behind the building.", {"section": "Clinic > Parking"}),
    ]
    body, media_type = multipart("file", "prices.csv",
                                 b"service,content\nflu,A flu shot is free for over 65s.\n"
                                 b"visit,A consultation costs 85 dollars.\n", "text/csv")
    status, added = client.send("POST", "/v1/knowledge/docs/rows", data=body,
                                content_type=media_type)
    assert status == 201, added
    assert [(r["content"], r["metadata"]) for r in added["rows"]] == [
        ("A flu shot is free for over 65s.", {"source": "prices.csv", "service": "flu"}),
        ("A consultation costs 85 dollars.", {"source": "prices.csv", "service": "visit"}),
    ]
    status, added = client.send("POST", "/v1/knowledge/docs/rows",
                                data=b"First paragraph.\n\nSecond one.\n",
                                content_type="text/plain")
    assert status == 201 and [r["content"] for r in added["rows"]] == ["First paragraph.",
                                                                      "Second one."]
    status, hits = client.send("POST", "/v1/knowledge/docs/query",
                               {"query": "how much is a doctor's appointment", "limit": 1})
    assert hits[0]["content"] == "A consultation costs 85 dollars."

    assert "text/markdown" in client.refused(415, "POST", "/v1/knowledge/docs/rows",
                                             data=b"%PDF-1.4", content_type="application/pdf")
    body, media_type = multipart("file", "scan.pdf", b"%PDF-1.4", "application/pdf")
    assert ".md" in client.refused(415, "POST", "/v1/knowledge/docs/rows", data=body,
                                   content_type=media_type)
    assert "UTF-8" in client.refused(400, "POST", "/v1/knowledge/docs/rows",
                                     data="caf\u00e9\n".encode("latin-1"),
                                     content_type="text/plain")
    assert client.send("GET", "/v1/knowledge/docs")[1]["rows"] == 6


@pytest.mark.parametrize("body, status, words", [
    ({"name": "Clinic"}, 400, "lowercase"),
    ({"name": "a/b"}, 400, "lowercase"),
    ({"name": ""}, 400, "name"),
    ({}, 400, "name"),
    ({"name": "ok", "colour": "red"}, 400, "colour"),
    ({"name": "ok", "description": "x" * 501}, 400, "description"),
    ({"name": "clinic"}, 409, "already exists"),
])
def test_bad_tables(client: Client, body: dict, status: int, words: str) -> None:
    client.send("POST", "/v1/knowledge", {"name": "clinic"})
    assert words in client.refused(status, "POST", "/v1/knowledge", body=body)


def test_too_many_tables(client: Client) -> None:
    for name in ("a", "b", "c"):
        assert client.send("POST", "/v1/knowledge", {"name": name})[0] == 201
    assert "max_tables" in client.refused(413, "POST", "/v1/knowledge", body={"name": "d"})


@pytest.mark.parametrize("body, status, words", [
    ({"rows": []}, 400, "rows"),
    ({"rows": [{"content": ""}]}, 400, "content"),
    ({"rows": [{"content": 5}]}, 400, "content"),
    ({"rows": [{"content": "ok", "metadata": [1]}]}, 400, "metadata"),
    ({"rows": [{"content": "ok", "tags": []}]}, 400, "tags"),
    ({"rows": [{"content": "ok"}, {"content": "x" * 301}]}, 413, "max_row_chars"),
    ({"rows": [{"content": f"row {n}"} for n in range(21)]}, 413, "max_rows"),
])
def test_bad_rows_write_nothing(client: Client, body: dict, status: int, words: str) -> None:
    client.send("POST", "/v1/knowledge", {"name": "clinic"})
    client.send("POST", "/v1/knowledge/clinic/rows", {"rows": ROWS[:1]})
    assert words in client.refused(status, "POST", "/v1/knowledge/clinic/rows", body=body)
    assert client.send("GET", "/v1/knowledge/clinic/rows")[1]["total"] == 1


def test_a_body_past_the_upload_limit_is_refused_before_it_is_read(client: Client) -> None:
    client.send("POST", "/v1/knowledge", {"name": "clinic"})
    client.refused(413, "POST", "/v1/knowledge/clinic/rows", data=b"word " * 5000,
                   content_type="text/plain")
    assert client.send("GET", "/v1/knowledge/clinic")[1]["rows"] == 0


@pytest.mark.parametrize("method, path, body", [
    ("GET", "/v1/knowledge/nope", None),
    ("DELETE", "/v1/knowledge/nope", None),
    ("GET", "/v1/knowledge/nope/rows", None),
    ("POST", "/v1/knowledge/nope/rows", {"rows": ROWS}),
    ("POST", "/v1/knowledge/nope/query", {"query": "hours"}),
    ("DELETE", "/v1/knowledge/nope/rows/0123456789abcdef", None),
])
def test_unknown_tables_are_404(client: Client, method: str, path: str, body) -> None:
    assert "nope" in client.refused(404, method, path, body=body)


@pytest.mark.parametrize("path, body, words", [
    ("/query", {}, "query"),
    ("/query", {"query": ""}, "query"),
    ("/query", {"query": "x", "limit": 0}, "limit"),
    ("/query", {"query": "x", "limit": 51}, "limit"),
    ("/query", {"query": "x", "limit": "3"}, "limit"),
    ("/query", {"query": "x", "min_score": 2}, "min_score"),
    ("/rows?limit=0", None, "limit"),
    ("/rows?offset=-1", None, "offset"),
    ("/rows?limit=many", None, "limit"),
])
def test_bad_queries_and_pages(client: Client, path: str, body, words: str) -> None:
    client.send("POST", "/v1/knowledge", {"name": "clinic"})
    method = "POST" if body is not None else "GET"
    assert words in client.refused(400, method, "/v1/knowledge/clinic" + path, body=body)


@pytest.mark.telephony
@pytest.mark.models
def test_tables_survive_a_daemon_restart(start_daemon, phone, tmp_path: Path) -> None:
    first = start_daemon(phone, state=tmp_path)
    assert first.request("POST", "/v1/knowledge", {"name": "clinic"})[0] == 201
    status, added = first.request("POST", "/v1/knowledge/clinic/rows", {"rows": ROWS})
    assert status == 201, added
    question = {"query": "What are your opening hours?", "limit": 3}
    status, before = first.request("POST", "/v1/knowledge/clinic/query", question)
    assert status == 200 and before[0]["id"] == added["rows"][0]["id"]
    table = first.request("GET", "/v1/knowledge/clinic")[1]
    first.stop()

    second = start_daemon(phone, state=tmp_path)
    assert second.request("GET", "/v1/knowledge") == (200, [table])
    assert second.request("POST", "/v1/knowledge/clinic/query", question) == (200, before)
    paths = second.request("GET", "/openapi.json")[1]["paths"]
    assert {"/v1/knowledge", "/v1/knowledge/{name}", "/v1/knowledge/{name}/rows",
            "/v1/knowledge/{name}/rows/{row_id}", "/v1/knowledge/{name}/query"} <= set(paths)

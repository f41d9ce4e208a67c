"""Uploaded documents split into rows: plain text by paragraph, Markdown by headed section, CSV
by row. A piece longer than the row limit is cut at sentence ends (at spaces if a sentence alone is
too long), so every row stays searchable as a whole.
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any

from .errors import InvalidInput

FORMATS = ("text", "markdown", "csv")
_EXTENSIONS = {".txt": "text", ".text": "text", ".md": "markdown", ".markdown": "markdown",
               ".csv": "csv"}
_MEDIA_TYPES = {"text/plain": "text", "text/markdown": "markdown", "text/x-markdown": "markdown",
                "text/csv": "csv"}
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def format_of(filename: str = "", media_type: str = "") -> str | None:
    """"text", "markdown" or "csv" from a file name's extension or else a media type."""
    suffix = re.search(r"\.[A-Za-z]+$", filename or "")
    if suffix and suffix.group(0).lower() in _EXTENSIONS:
        return _EXTENSIONS[suffix.group(0).lower()]
    return _MEDIA_TYPES.get(media_type.split(";")[0].strip().lower())


def split(document: str, kind: str, max_chars: int,
          source: str = "") -> list[tuple[str, dict[str, Any]]]:
    """(content, metadata) pairs for the rows of `document`; metadata names the source file."""
    base = {"source": source} if source else {}
    if kind == "text":
        pieces = [(p, {}) for p in _paragraphs(document)]
    elif kind == "markdown":
        pieces = _sections(document)
    elif kind == "csv":
        pieces = _csv_rows(document)
    else:
        raise InvalidInput(f"unknown document format {kind!r}: write one of {', '.join(FORMATS)}")
    rows = []
    for content, metadata in pieces:
        for chunk in _fit(content, max_chars):
            rows.append((chunk, {**base, **metadata}))
    if not rows:
        raise InvalidInput(f"the {kind} document holds no text to make rows of")
    return rows


def _paragraphs(text: str) -> list[str]:
    blocks = re.split(r"\n\s*\n", text.replace("\r\n", "\n"))
    return [" ".join(line.strip() for line in block.splitlines()).strip()
            for block in blocks if block.strip()]


def _sections(text: str) -> list[tuple[str, dict[str, Any]]]:
    """A row per heading with text under it: "Heading: paragraph…", metadata its heading path."""
    sections: list[tuple[list[str], list[str]]] = []
    path: list[str] = []
    body: list[str] = []
    fenced = False

    def close() -> None:
        if any(line.strip() for line in body):
            sections.append((list(path), list(body)))
        body.clear()

    for line in text.replace("\r\n", "\n").split("\n"):
        if _FENCE.match(line):
            fenced = not fenced
        heading = None if fenced else _HEADING.match(line)
        if heading:
            close()
            level = len(heading.group(1))
            del path[level - 1:]
            path.extend([""] * (level - 1 - len(path)))  # a ### straight under a #
            path.append(heading.group(2))
        else:
            body.append(line)
    close()
    rows = []
    for headings, lines in sections:
        paragraphs = " ".join(_paragraphs("\n".join(lines)))
        title = headings[-1] if headings else ""
        content = f"{title}: {paragraphs}" if title else paragraphs
        named = [h for h in headings if h]
        rows.append((content, {"section": " > ".join(named)} if named else {}))
    return rows


def _csv_rows(text: str) -> list[tuple[str, dict[str, Any]]]:
    """A header line, then one row each; a "content" column is the row, the rest its metadata.

    Without a "content" column the row reads "column: value; column: value".
    """
    try:
        records = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    except csv.Error as exc:
        raise InvalidInput(f"the CSV file cannot be read: {exc}") from None
    records = [r for r in records if any(cell.strip() for cell in r)]
    if len(records) < 2:
        raise InvalidInput("the CSV file needs a header line and at least one row")
    header = [name.strip() for name in records[0]]
    if not all(header) or len(set(header)) != len(header):
        raise InvalidInput("the CSV header needs a distinct, non-empty name for each column")
    lowered = [name.lower() for name in header]
    rows = []
    for number, record in enumerate(records[1:], start=2):
        if len(record) > len(header):
            raise InvalidInput(f"CSV line {number} has {len(record)} cells, the header"
                               f" {len(header)}")
        cells = {name: value.strip() for name, value in zip(header, record) if value.strip()}
        if "content" in lowered:
            column = header[lowered.index("content")]
            content = cells.pop(column, "")
            if content:
                rows.append((content, cells))
        elif cells:
            rows.append(("; ".join(f"{k}: {v}" for k, v in cells.items()), {"line": number}))
    return rows


def _fit(text: str, max_chars: int) -> list[str]:
    """`text` in pieces of at most `max_chars`, cut at sentence ends, else at spaces."""
    text = text.strip()
    if len(text) <= max_chars:
        return [text] if text else []
    pieces: list[str] = []
    current = ""
    for sentence in _SENTENCE_END.split(text):
        for part in _hard_cut(sentence, max_chars):
            joined = f"{current} {part}" if current else part
            if len(joined) <= max_chars:
                current = joined
            else:
                pieces.append(current)
                current = part
    if current:
        pieces.append(current)
    return pieces


def _hard_cut(sentence: str, max_chars: int) -> list[str]:
    parts = []
    while len(sentence) > max_chars:
        cut = sentence.rfind(" ", 0, max_chars + 1)
        cut = cut if cut > 0 else max_chars
        parts.append(sentence[:cut].strip())
        sentence = sentence[cut:].strip()
    return [*parts, sentence] if sentence else parts

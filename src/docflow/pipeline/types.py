"""Values that flow between the pure stage functions. No DB, Celery or FastAPI here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class FileKind(StrEnum):
    PDF = "pdf"
    DOCX = "docx"
    ODT = "odt"
    HTML = "html"
    TEXT = "text"
    MARKDOWN = "markdown"
    CSV = "csv"
    IMAGE = "image"


class StageError(Exception):
    """A deterministic failure: the file itself is the problem, retrying cannot help.

    `message` is shown to a person as the document's failure reason, so it must read well
    ("this PDF is password-protected"), never a traceback.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TransientError(Exception):
    """A failure worth retrying (a dependency was briefly unavailable)."""


# Called with (done, total) as a stage works through pages or chunks; the worker turns it into
# live-only progress events and lease heartbeats.
ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class Validation:
    kind: FileKind
    content_type: str  # the canonical MIME type decided by sniffing, not the client's claim


@dataclass(frozen=True, slots=True)
class Extraction:
    text: str
    page_count: int
    metadata: dict[str, Any] = field(default_factory=dict)  # title, author, ... when present


@dataclass(frozen=True, slots=True)
class Analysis:
    language: str | None
    word_count: int
    reading_time_minutes: float
    summary: str
    keywords: list[str]
    fields: dict[str, list[str]] = field(default_factory=dict)  # dates, amounts, emails, refs


@dataclass(frozen=True, slots=True)
class Categorization:
    category: str
    confidence: float  # 0..1

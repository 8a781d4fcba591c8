"""Pure document-processing stages: bytes, a file's path or text in, results out.

Nothing here imports the database, Celery, FastAPI or settings; the worker wraps these.
"""

from docflow.pipeline.analyze import analyze
from docflow.pipeline.categorize import DEFAULT_CATEGORIES, Classifier, categorize
from docflow.pipeline.extract import extract_text
from docflow.pipeline.types import (
    Analysis,
    Categorization,
    Extraction,
    FileKind,
    ProgressCallback,
    StageError,
    TransientError,
    Validation,
)
from docflow.pipeline.validate import validate

__all__ = [
    "DEFAULT_CATEGORIES",
    "Analysis",
    "Categorization",
    "Classifier",
    "Extraction",
    "FileKind",
    "ProgressCallback",
    "StageError",
    "TransientError",
    "Validation",
    "analyze",
    "categorize",
    "extract_text",
    "validate",
]

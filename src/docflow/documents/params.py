"""Query parameters shared by the list and the export."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Depends, Query

from docflow.documents.repository import DocumentFilter
from docflow.models import Status


def document_filter(
    status: Annotated[list[Status] | None, Query(description="Repeat to match several")] = None,
    category: Annotated[str | None, Query(max_length=64)] = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    q: Annotated[str | None, Query(max_length=200, description="Search names and content")] = None,
) -> DocumentFilter:
    return DocumentFilter(
        status=[s.value for s in status] if status else None,
        category=category,
        created_from=created_from,
        created_to=created_to,
        q=q or None,
    )


FilterDep = Annotated[DocumentFilter, Depends(document_filter)]

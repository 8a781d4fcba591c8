"""HTTP for export."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from docflow.deps import CurrentUser
from docflow.documents.params import FilterDep
from docflow.export import service as export

router = APIRouter(prefix="/export", tags=["export"])


class ExportFormat(StrEnum):
    JSON = "json"
    CSV = "csv"


@router.get("", response_class=StreamingResponse)
async def export_documents(
    user: CurrentUser, f: FilterDep, format: Annotated[ExportFormat, Query()] = ExportFormat.JSON
) -> StreamingResponse:
    """Finalised documents the caller may see, streamed as CSV or JSON in constant memory."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    if format is ExportFormat.CSV:
        body, media = export.csv_rows(user, f), "text/csv; charset=utf-8"
    else:
        body, media = export.json_rows(user, f), "application/json"
    headers = {
        "Content-Disposition": f'attachment; filename="docflow-export-{stamp}.{format.value}"'
    }
    return StreamingResponse(body, media_type=media, headers=headers)

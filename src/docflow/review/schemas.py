from __future__ import annotations

from pydantic import Field

from docflow.models import Stage
from docflow.schemas import Strict


class ApproveRequest(Strict):
    """Optional corrections; what the reviewer changes is kept in the audit trail."""

    category: str | None = Field(default=None, min_length=1, max_length=64)
    title: str | None = Field(default=None, min_length=1, max_length=500)
    keywords: list[str] | None = Field(default=None, max_length=50)
    note: str | None = Field(default=None, max_length=2000)


class RejectRequest(Strict):
    reason: str = Field(min_length=1, max_length=2000)


class ReprocessRequest(Strict):
    from_stage: Stage = Stage.VALIDATE
    note: str | None = Field(default=None, max_length=2000)

"""Shapes of the categories API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from docflow.schemas import Strict


class CategoryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    rule_key: str | None = Field(
        description="The built-in rule set behind this category; null for one an admin added, "
        "which only the learned classifier predicts."
    )
    document_count: int = 0
    created_at: datetime
    updated_at: datetime


class CategoryCreate(Strict):
    name: str = Field(min_length=1, max_length=64, examples=["purchase_order"])


class CategoryUpdate(Strict):
    """A rename: documents filed under the old name move to the new one in the same change."""

    name: str = Field(min_length=1, max_length=64, examples=["cv"])


class ClassifierStatus(BaseModel):
    """The learned classifier the categorize stage uses, if any."""

    active: bool = Field(description="True when the newest model is good enough to be used.")
    version: int | None = None
    sample_count: int = 0
    classes: list[str] = []
    created_at: datetime | None = None
    info: dict[str, object] = {}
    min_samples: int
    min_classes: int


class TrainingQueued(BaseModel):
    queued: bool

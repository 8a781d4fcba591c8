from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from docflow.auth.schemas import storable_text
from docflow.models import Role


class Strict(BaseModel):
    """Request bodies reject unknown fields (no mass assignment) and unstorable text."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, value: object) -> object:
        return storable_text(value) if isinstance(value, str) else value


class UserCreate(Strict):
    email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    password: str = Field(min_length=8, max_length=1024)
    role: Role = Role.UPLOADER


class UserUpdate(Strict):
    """Only what an admin may change; everything else about an account is not settable."""

    role: Role | None = None
    is_active: bool | None = None


class UserAdminRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    role: str
    is_active: bool
    created_at: datetime

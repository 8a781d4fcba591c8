from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from docflow.models import Role
from docflow.schemas import Strict


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

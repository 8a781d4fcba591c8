"""The base of every request body: unknown fields are refused (no mass assignment), and so is
text PostgreSQL cannot store."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, field_validator


def storable_text(value: str) -> str:
    """PostgreSQL text cannot hold NUL, and lone surrogates are not UTF-8: refuse them (422)."""
    if "\x00" in value or any("\ud800" <= ch <= "\udfff" for ch in value):
        raise ValueError("contains characters that cannot be stored (NUL or lone surrogates)")
    return value


class Strict(BaseModel):
    """Request bodies reject unknown fields (no mass assignment) and unstorable text."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, value: object) -> object:
        if isinstance(value, str):
            return storable_text(value)
        if isinstance(value, list):
            return [storable_text(v) if isinstance(v, str) else v for v in value]
        return value

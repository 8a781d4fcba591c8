"""originals stored out of line without compression

Originals are mostly formats that are compressed already (PDF streams, DOCX and ODT archives,
PNG, JPEG): PostgreSQL's default TOAST compression (pglz) tried each chunk anyway, and that
attempt was about 40% of an upload's statement in the database (0.3 of 0.75 ms of backend CPU
per document in the benchmark's mix). Plain text, the one kind that would compress, is small.
Rows already written keep their storage; new ones are stored as they came.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 20:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE document_blobs ALTER COLUMN data SET STORAGE EXTERNAL")


def downgrade() -> None:
    op.execute("ALTER TABLE document_blobs ALTER COLUMN data SET STORAGE EXTENDED")

"""recent review events indexed

An upload past the queue's backlog bound estimates its wait from how many documents reached
review in the last five minutes. That count read every stage event ever written (no index
covered it): a table scan every few seconds per API process while a backlog lasts, longer with
every document processed. A partial index holds only the review events, by time.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 19:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_document_events_review",
        "document_events",
        ["created_at"],
        postgresql_where=sa.text("type = 'document.review'"),
    )


def downgrade() -> None:
    op.drop_index("ix_document_events_review", table_name="document_events")

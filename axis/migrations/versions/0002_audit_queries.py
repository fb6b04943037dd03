"""indexes for auditors' queries (axis audit trail/search/stats/overdue)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("documents", schema=None) as batch_op:
        # The revokes, updates and replacements acting on a document (trail, overdue).
        batch_op.create_index(batch_op.f("ix_documents_acts_on"), ["acts_on"], unique=False)
    with op.batch_alter_table("statuses", schema=None) as batch_op:
        # The same lookup as before, now answering "when did this recipient first say
        # 01 (or 06) about this document" from the index alone (stats, overdue).
        batch_op.drop_index(batch_op.f("ix_statuses_document_id_sender_code"))
        batch_op.create_index(
            batch_op.f("ix_statuses_document_id_sender_code_received_at"),
            ["document_id", "sender", "code", "received_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("statuses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_statuses_document_id_sender_code_received_at"))
        batch_op.create_index(
            batch_op.f("ix_statuses_document_id_sender_code"),
            ["document_id", "sender", "code"],
            unique=False,
        )
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_documents_acts_on"))

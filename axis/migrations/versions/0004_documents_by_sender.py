"""documents keyed by sender and DocumentId (EDXML.md 1.1)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-08

A DocumentId is unique only per sender, and a revoke may repeat its original's id,
so ``documents`` is keyed by the hub's receipt id and indexed by (document_id,
sender), and records the signature profile it was accepted under (strict, or the
national SDK's legacy one). ``statuses.document_sender`` names whose document a status is about; for
existing rows, DocumentIds were unique hub-wide, so it is the one document's sender.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BACKFILL = """
UPDATE statuses SET document_sender = (
    SELECT d.sender FROM documents AS d WHERE d.document_id = statuses.document_id
)
"""


def upgrade() -> None:
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.drop_constraint("uq_documents_receipt_id", type_="unique")
        batch_op.drop_constraint("pk_documents", type_="primary")
        batch_op.create_primary_key("pk_documents", ["receipt_id"])
        batch_op.create_index(
            batch_op.f("ix_documents_document_id_sender"), ["document_id", "sender"], unique=False
        )
        batch_op.add_column(sa.Column("signature_profile", sa.String(length=8), nullable=True))
    with op.batch_alter_table("statuses", schema=None) as batch_op:
        batch_op.add_column(sa.Column("document_sender", sa.String(length=35), nullable=True))
    op.execute(BACKFILL)


def downgrade() -> None:
    with op.batch_alter_table("statuses", schema=None) as batch_op:
        batch_op.drop_column("document_sender")
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.drop_column("signature_profile")
        batch_op.drop_index(batch_op.f("ix_documents_document_id_sender"))
        batch_op.drop_constraint("pk_documents", type_="primary")
        batch_op.create_primary_key("pk_documents", ["document_id"])
        batch_op.create_unique_constraint("uq_documents_receipt_id", ["receipt_id"])

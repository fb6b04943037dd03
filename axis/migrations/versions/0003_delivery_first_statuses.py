"""the recipient's first 01 and 06 on its delivery row (axis audit stats)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24

``deliveries.acknowledged_at`` and ``deliveries.completed_at`` hold when the hub
received the recipient's first status 01 and 06 about the document, so that the
statistics read one row per delivery instead of probing the statuses index for each
(390,000 probes for a year of traffic). The router keeps them from now on; existing
rows are filled here from the statuses table, which holds one row per STATUS event
of the trail (its document, sender, code and time).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# UPDATE ... FROM: PostgreSQL, and SQLite since 3.33. One pass over the statuses that
# matter, grouped, instead of two correlated lookups per delivery.
BACKFILL = """
UPDATE deliveries
SET acknowledged_at = earliest.acknowledged_at, completed_at = earliest.completed_at
FROM (
    SELECT d.receipt_id AS receipt_id, s.sender AS recipient,
           min(CASE WHEN s.code = '01' THEN s.received_at END) AS acknowledged_at,
           min(CASE WHEN s.code = '06' THEN s.received_at END) AS completed_at
    FROM statuses AS s JOIN documents AS d ON d.document_id = s.document_id
    WHERE s.code IN ('01', '06')
    GROUP BY d.receipt_id, s.sender
) AS earliest
WHERE deliveries.receipt_id = earliest.receipt_id
  AND deliveries.recipient = earliest.recipient
"""


def upgrade() -> None:
    # Nullable columns without a default: SQLite adds them in place, PostgreSQL without
    # rewriting the table, so a hub with years of history migrates in one UPDATE.
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("acknowledged_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("completed_at", sa.DateTime(), nullable=True))
    op.execute(BACKFILL)


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_column("completed_at")
        batch_op.drop_column("acknowledged_at")

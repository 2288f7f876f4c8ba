"""create idempotency_keys

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "idempotency_keys",
        sa.Column("token_name", sa.String(length=63), primary_key=True),
        sa.Column("key", sa.String(length=255), primary_key=True),
        sa.Column("request_digest", sa.String(length=64), nullable=False),
        # The key lives and dies with its note: a retry after the note was deleted makes a new one, never an answer
        # pointing at nothing.
        sa.Column("note_id", sa.Integer(), sa.ForeignKey("notes.id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade():
    op.drop_table("idempotency_keys")

"""Initial schema: objects and the change log.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "objects",
        sa.Column("resource", sa.String, primary_key=True),
        sa.Column("namespace", sa.String, primary_key=True),
        sa.Column("name", sa.String, primary_key=True),
        sa.Column("uid", sa.String, nullable=False),
        sa.Column("rv", sa.Integer, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
    )
    op.create_table(
        "changes",
        sa.Column("rv", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("resource", sa.String, nullable=False),
        sa.Column("namespace", sa.String, nullable=False),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("type", sa.String, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("changes")
    op.drop_table("objects")

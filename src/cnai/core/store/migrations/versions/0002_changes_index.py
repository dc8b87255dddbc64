"""Index the change log by resource so a watch resumes without scanning other kinds.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_index("ix_changes_resource_rv", "changes", ["resource", "rv"])


def downgrade() -> None:
    op.drop_index("ix_changes_resource_rv", "changes")

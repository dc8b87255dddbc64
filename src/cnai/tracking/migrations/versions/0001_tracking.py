"""Tracking schema: run groups, runs, params, tags, and metric series stored in chunks.

Revision ID: 0001
Revises:
"""

from alembic import op

revision = "0001"
down_revision = None

# Plain SQL: WITHOUT ROWID tables and exact column types matter for size and speed here.
_TABLES = [
    """CREATE TABLE run_groups (
        id INTEGER PRIMARY KEY,
        namespace TEXT NOT NULL,
        name TEXT NOT NULL,
        lifecycle TEXT NOT NULL DEFAULT 'active',
        created_ms INTEGER NOT NULL,
        tags TEXT NOT NULL DEFAULT '{}',
        UNIQUE (namespace, name)
    )""",
    """CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        namespace TEXT NOT NULL,
        group_id INTEGER NOT NULL REFERENCES run_groups (id),
        name TEXT NOT NULL,
        status TEXT NOT NULL,
        start_ms INTEGER NOT NULL,
        end_ms INTEGER,
        owner_kind TEXT NOT NULL DEFAULT '',
        owner_name TEXT NOT NULL DEFAULT '',
        owner_uid TEXT NOT NULL DEFAULT '',
        artifact_uri TEXT NOT NULL,
        lifecycle TEXT NOT NULL DEFAULT 'active'
    )""",
    "CREATE INDEX runs_by_group ON runs (namespace, group_id, start_ms)",
    "CREATE INDEX runs_by_owner ON runs (owner_uid)",
    """CREATE TABLE params (
        run_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
        PRIMARY KEY (run_id, key)
    ) WITHOUT ROWID""",
    """CREATE TABLE tags (
        run_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
        PRIMARY KEY (run_id, key)
    ) WITHOUT ROWID""",
    """CREATE TABLE series (
        id INTEGER PRIMARY KEY,
        run_id TEXT NOT NULL,
        key TEXT NOT NULL,
        points INTEGER NOT NULL DEFAULT 0,
        chunks INTEGER NOT NULL DEFAULT 0,
        last_step INTEGER,
        last_value REAL,
        last_ms INTEGER,
        UNIQUE (run_id, key)
    )""",
    # Batches already applied, so that a client resending one whose answer it lost
    # (the server died after committing) does not log its points twice.
    """CREATE TABLE batches (
        run_id TEXT NOT NULL, batch_id TEXT NOT NULL, points INTEGER NOT NULL,
        PRIMARY KEY (run_id, batch_id)
    ) WITHOUT ROWID""",
    """CREATE TABLE chunks (
        series_id INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        steps BLOB NOT NULL,
        vals BLOB NOT NULL,
        stamps BLOB NOT NULL,
        PRIMARY KEY (series_id, seq)
    ) WITHOUT ROWID""",
]


def upgrade() -> None:
    for statement in _TABLES:
        op.execute(statement)


def downgrade() -> None:
    for table in ("chunks", "batches", "series", "tags", "params", "runs", "run_groups"):
        op.execute(f"DROP TABLE {table}")

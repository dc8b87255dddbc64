"""SQL schema of the object store. Keep in sync with migrations/versions (alembic)."""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()

# One row per live object; ``data`` is the object's JSON with its resourceVersion.
objects = Table(
    "objects",
    metadata,
    Column("resource", String, primary_key=True),
    Column("namespace", String, primary_key=True),  # "" for cluster-scoped objects
    Column("name", String, primary_key=True),
    Column("uid", String, nullable=False),
    Column("rv", Integer, nullable=False),
    Column("data", Text, nullable=False),
)

# The change log that watches replay from; old rows are compacted away.
changes = Table(
    "changes",
    metadata,
    Column("rv", Integer, primary_key=True, autoincrement=False),
    Column("resource", String, nullable=False),
    Column("namespace", String, nullable=False),
    Column("name", String, nullable=False),
    Column("type", String, nullable=False),
    Column("data", Text, nullable=False),
    Index("ix_changes_resource_rv", "resource", "rv"),
)

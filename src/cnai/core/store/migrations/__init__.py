"""Alembic migrations of the object store; run at every start by :func:`upgrade`."""

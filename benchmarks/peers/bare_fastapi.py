"""The ceiling cnai's API is compared with: a bare FastAPI + pydantic + SQLite insert endpoint.

No peer API server (kube-apiserver) can run on this machine, so
benchmarks/api_throughput.py measures this instead: the least a Python API server must
do to accept an object. ``POST /secrets`` validates a small pydantic model (name,
namespace, labels, data), inserts it as JSON into one SQLite table in WAL mode
(``synchronous=NORMAL``, cnai's default), commits per request and answers 201 with the
object. No auth, no admission chain, no resourceVersion, no change log, no watch
fan-out: everything cnai adds is the difference. ``GET /secrets`` returns every stored
row, joined from the stored JSON without re-parsing (the cheapest possible full list).

Run: ``python benchmarks/peers/bare_fastapi.py --db /tmp/peer.db --port 8099``.
"""

from __future__ import annotations

import argparse
import sqlite3

import uvicorn
from fastapi import FastAPI, HTTPException, Response
from pydantic import BaseModel, Field


class Metadata(BaseModel):
    name: str = Field(min_length=1, max_length=63, description="Unique within the namespace.")
    namespace: str = Field(default="default", description="The object's namespace.")
    labels: dict[str, str] = Field(default_factory=dict, description="Labels.")


class Secret(BaseModel):
    apiVersion: str = Field(description="API version.")
    kind: str = Field(description="Kind.")
    metadata: Metadata = Field(description="Name, namespace and labels.")
    data: dict[str, str] = Field(default_factory=dict, description="Base64 values.")


def open_db(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS objects ("
        " namespace TEXT NOT NULL, name TEXT NOT NULL, data TEXT NOT NULL,"
        " PRIMARY KEY (namespace, name))"
    )
    return conn


def create_app(db_path: str) -> FastAPI:
    app = FastAPI()
    conn = open_db(db_path)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    # async, like cnai's handlers: SQLite runs on the event loop's thread, one commit each.
    @app.post("/secrets", status_code=201)
    async def create(secret: Secret) -> Secret:
        raw = secret.model_dump_json()
        try:
            conn.execute("BEGIN")
            conn.execute(
                "INSERT INTO objects (namespace, name, data) VALUES (?, ?, ?)",
                (secret.metadata.namespace, secret.metadata.name, raw),
            )
            conn.execute("COMMIT")
        except sqlite3.IntegrityError:
            conn.execute("ROLLBACK")
            raise HTTPException(409, "already exists") from None
        return secret

    @app.get("/secrets")
    async def list_all() -> Response:
        rows = conn.execute("SELECT data FROM objects ORDER BY namespace, name").fetchall()
        body = '{"items":[' + ",".join(r[0] for r in rows) + "]}"
        return Response(body, media_type="application/json")

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="SQLite file to create or reuse.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    uvicorn.run(
        create_app(args.db),
        host=args.host,
        port=args.port,
        http="httptools",
        loop="uvloop",
        log_level="warning",
        access_log=False,
        workers=1,
    )


if __name__ == "__main__":
    main()

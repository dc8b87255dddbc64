"""Logging runs from Python: ``cnai.start_run()``, ``cnai.log_metrics()`` and friends.

A training step never waits on the network. ``log_metrics`` appends to a bounded
in-memory buffer and returns; a background thread sends what has gathered, as columns,
every ``flush_interval`` seconds or as soon as ``batch_points`` points are waiting. If
the server is slow or away, the thread retries with backoff, and once the buffer holds
``max_buffer_points`` points the oldest batches spill to a spool file on disk (under
``$CNAI_HOME/spool``), sent first when the server answers again. A point counts as
acknowledged when the server has answered 2xx for it (the server answers only once the
point is committed, so an acknowledged point survives a server restart). ``end()``,
leaving a ``with`` block, or the interpreter's exit flushes what is left.

A batch the server refuses as bad input (4xx) is not retried: it is dropped and the
error kept in ``Run.errors`` (and logged), since sending it again cannot succeed.

Inside a workload that cnai started, ``CNAI_RUN_ID`` names the run, and the module-level
functions log to it with no ``start_run`` call.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from cnai.core.config import cnai_home  # light: the YAML parser is imported only to read

if TYPE_CHECKING:
    from cnai.tracking.transport import Transport

log = logging.getLogger("cnai.tracking.sdk")

API = "/apis/tracking.cnai.io/v1/namespaces"
RUN_ID_ENV = "CNAI_RUN_ID"


class TrackingError(Exception):
    """The tracking API refused a request; the message is the server's."""


@dataclass
class _Batch:
    """Records waiting to be sent together: metric columns, params, tags."""

    metrics: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    points: int = 0
    # Sent with the batch: the server applies a batch id once, so a resend after a lost
    # answer does not log the points twice.
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def add_point(self, key: str, value: float, step: int, ms: int) -> None:
        columns = self.metrics.get(key)
        if columns is None:
            columns = self.metrics[key] = {"steps": [], "values": [], "timestamps": []}
        columns["steps"].append(step)
        columns["values"].append(value)
        columns["timestamps"].append(ms)
        self.points += 1

    def body(self) -> dict[str, Any]:
        return {"metrics": self.metrics, "params": self.params, "tags": self.tags}

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> _Batch:
        metrics = body.get("metrics") or {}
        points = sum(len(c.get("values", ())) for c in metrics.values())
        return cls(
            dict(metrics), dict(body.get("params") or {}), dict(body.get("tags") or {}), points
        )

    def __bool__(self) -> bool:
        return bool(self.points or self.params or self.tags)

    def halves(self) -> tuple[_Batch, _Batch]:
        """The batch split in two of about half the points each (params and tags go
        with the first); their ids are derived from this one's."""
        first = _Batch(params=self.params, tags=self.tags, id=f"{self.id}a")
        second = _Batch(id=f"{self.id}b")
        half = self.points // 2
        for key, columns in self.metrics.items():
            n = len(columns["values"])
            take = min(n, max(0, half - first.points))
            for target, part in ((first, slice(0, take)), (second, slice(take, n))):
                if part.stop - part.start:
                    target.metrics[key] = {c: v[part] for c, v in columns.items()}
                    target.points += part.stop - part.start
        return first, second


def _configured(
    server: str | None, token: str | None, namespace: str | None
) -> tuple[str, str | None, str | None]:
    """Server, token and namespace, each the caller's, else ``load_config``'s (which
    reads CNAI_SERVER, CNAI_TOKEN and CNAI_NAMESPACE, then the config file). A workload's
    pod sets all three variables, so there the file, and the YAML parser, are never
    read. Keep in sync with :func:`cnai.core.config.load_config`."""
    env = os.environ
    found = (
        server or env.get("CNAI_SERVER", "").rstrip("/"),
        token or env.get("CNAI_TOKEN"),
        namespace or env.get("CNAI_NAMESPACE"),
    )
    if found[0] and found[1] and found[2]:
        return found
    from cnai.core.config import load_config

    cfg = load_config()
    return server or cfg.server, token or cfg.token, namespace or cfg.namespace


class TrackingClient:
    """The tracking API over HTTP (synchronous), with the ``cnai`` command's config."""

    def __init__(
        self,
        server: str | None = None,
        token: str | None = None,
        namespace: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        # Imported here, not with the module: ``import cnai`` stays free of http.client.
        from cnai.tracking.transport import Transport

        if server is None or token is None:
            server, token, namespace = _configured(server, token, namespace)
        self.namespace = namespace or "default"
        self.http: Transport = Transport(
            server,
            headers={"Authorization": f"Bearer {token}"} if token else {},
            timeout=timeout,
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> TrackingClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def url(self, path: str) -> str:
        return f"{API}/{self.namespace}{path}"

    def request(self, method: str, path: str, **kw: Any) -> Any:
        answer = self.http.request(method, self.url(path), **kw)
        if answer.status_code >= 400:
            try:
                message = answer.json().get("message", answer.text)
            except ValueError:
                message = answer.text
            raise TrackingError(f"{answer.status_code}: {message}")
        return answer.json()

    def create_run(self, **body: Any) -> dict[str, Any]:
        created: dict[str, Any] = self.request("POST", "/runs", json=body)
        return created

    def get_run(self, run_id: str) -> dict[str, Any]:
        run: dict[str, Any] = self.request("GET", f"/runs/{run_id}")
        return run

    def list_runs(self, group: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"limit": limit}
        if group:
            params["group"] = group
        items: list[dict[str, Any]] = self.request("GET", "/runs", params=params)["items"]
        return items

    def update_run(self, run_id: str, **body: Any) -> dict[str, Any]:
        run: dict[str, Any] = self.request("PATCH", f"/runs/{run_id}", json=body)
        return run

    def history(self, run_id: str, key: str) -> dict[str, list[Any]]:
        found: dict[str, list[Any]] = self.request("GET", f"/runs/{run_id}/metrics/{key}")
        return found

    def upload_artifact(self, run_id: str, local: Path, path: str) -> None:
        """Upload one file to ``path`` among the run's artifacts (streamed)."""
        with local.open("rb") as f:
            answer = self.http.put(
                self.url(f"/runs/{run_id}/artifacts/{path}"),
                content=f,
                headers={"content-type": "application/octet-stream"},
                timeout=None,
            )
        if answer.status_code >= 400:
            raise TrackingError(f"{answer.status_code}: {answer.text}")

    def list_artifacts(self, run_id: str, path: str = "") -> list[dict[str, Any]]:
        suffix = f"/{path}" if path else ""
        files: list[dict[str, Any]] = self.request("GET", f"/runs/{run_id}/artifacts{suffix}")[
            "files"
        ]
        return files

    def download_artifact(self, run_id: str, path: str) -> bytes:
        answer = self.http.get(self.url(f"/runs/{run_id}/artifacts/{path}"), timeout=None)
        if answer.status_code >= 400:
            raise TrackingError(f"{answer.status_code}: {answer.text}")
        return answer.content

    def register_model(self, name: str, source: str, **spec: Any) -> dict[str, Any]:
        """Register the next version of model ``name`` (created if new); ``spec`` holds
        runId, format, signature, metrics, description, tags and aliases (a list).
        Returns the ModelVersion."""
        body = {"source": source, **{k: v for k, v in spec.items() if v is not None}}
        version: dict[str, Any] = self.request("POST", f"/models/{name}/versions", json=body)
        return version

    def histories(self, run_ids: list[str], key: str) -> dict[str, dict[str, list[Any]]]:
        found: dict[str, dict[str, list[Any]]] = self.request(
            "POST", "/metrics:history", json={"key": key, "runs": run_ids}
        )["runs"]
        return found


class Run:
    """A run being logged. Its ``log_*`` methods return at once (see the module doc)."""

    def __init__(
        self,
        client: TrackingClient,
        run_id: str,
        *,
        flush_interval: float = 0.2,
        batch_points: int = 50_000,
        max_buffer_points: int = 1_000_000,
        spool_dir: Path | None = None,
        own_client: bool = False,
        workload: bool = False,
    ) -> None:
        self.client, self.id = client, run_id
        # The run of the job this process belongs to: the platform ends it when the job
        # ends, so ending it here only flushes (other workers and restarts log on).
        self.workload = workload
        self.flush_interval, self.batch_points = flush_interval, batch_points
        self.max_buffer_points = max_buffer_points
        self.spool = (spool_dir or cnai_home() / "spool") / f"{run_id}.jsonl"
        self.errors: list[str] = []  # batches the server refused as bad input
        self.acked_points = 0  # points the server answered 2xx for
        self._own_client = own_client
        self._lock = threading.Condition()
        self._open = _Batch()  # being filled by the caller
        self._queue: deque[_Batch] = deque()  # closed batches, oldest first
        self._queued_points = 0
        self._retry: _Batch | None = None  # the batch whose send failed, sent first
        self._sending = 0  # points in flight
        self._closed = False
        self._monitor: Any = None  # the system metrics sampler, when asked for
        self._thread = threading.Thread(
            target=self._loop, name=f"cnai-run-{run_id[:8]}", daemon=True
        )
        self._thread.start()
        atexit.register(self._at_exit)

    # -- what a training loop calls --------------------------------------------------

    def log_metrics(
        self, metrics: Mapping[str, float], step: int = 0, timestamp: int | None = None
    ) -> None:
        """Queue one point per metric at ``step`` (milliseconds ``timestamp``, now by
        default). Never blocks on the network."""
        ms = int(time.time() * 1000) if timestamp is None else int(timestamp)
        with self._lock:
            self._check_open()
            for key, value in metrics.items():
                self._open.add_point(key, float(value), int(step), ms)
            self._after_add()

    def log_metric(
        self, key: str, value: float, step: int = 0, timestamp: int | None = None
    ) -> None:
        self.log_metrics({key: value}, step, timestamp)

    def log_params(self, params: Mapping[str, Any]) -> None:
        with self._lock:
            self._check_open()
            self._open.params.update({k: str(v) for k, v in params.items()})
            self._after_add()

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        with self._lock:
            self._check_open()
            self._open.tags.update({k: str(v) for k, v in tags.items()})
            self._after_add()

    def log_artifact(self, local_path: str | Path, artifact_path: str = "") -> None:
        """Upload a file, or a directory's files, under ``artifact_path`` among the run's
        artifacts. Unlike metrics this waits for the upload (files are usually logged
        once, at the end, and must be there when the run ends)."""
        local = Path(local_path)
        base = artifact_path.strip("/")
        if local.is_dir():
            for file in sorted(p for p in local.rglob("*") if p.is_file()):
                rel = file.relative_to(local).as_posix()
                self.client.upload_artifact(self.id, file, f"{base}/{rel}" if base else rel)
        elif local.is_file():
            self.client.upload_artifact(
                self.id, local, f"{base}/{local.name}" if base else local.name
            )
        else:
            raise TrackingError(f"{local}: no such file or directory")

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything logged so far is acknowledged (True) or ``timeout``
        seconds pass (False)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            self._close_open()
            self._lock.notify_all()
            while self._pending():
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._lock.wait(0.05 if left is None else min(left, 0.05))
        return True

    def log_system_metrics(self, interval: float = 10.0) -> None:
        """Log CPU, memory and (where NVML finds them) GPU metrics every ``interval``
        seconds until the run ends (see :mod:`cnai.tracking.system`)."""
        from cnai.tracking.system import SystemMonitor

        if self._monitor is None:
            self._monitor = SystemMonitor(self, interval).start()

    def end(self, status: str = "FINISHED", timeout: float | None = 60.0) -> None:
        """Flush, then mark the run ``status`` with its end time (a job's run: flush only;
        the platform ends it with the job)."""
        if self._monitor is not None:
            self._monitor.stop()
        self.flush(timeout)
        self._stop()
        _forget(self)
        if not self.workload:
            self.client.update_run(self.id, status=status, endTime=int(time.time() * 1000))
        if self._own_client:
            self.client.close()

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.end("FAILED" if exc is not None else "FINISHED")

    # -- the sender --------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise TrackingError(f"run {self.id} has ended: start another to log more")

    def _after_add(self) -> None:
        if self._open.points >= self.batch_points:
            self._close_open()
            self._lock.notify_all()

    def _close_open(self) -> None:
        if self._open:
            self._queue.append(self._open)
            self._queued_points += self._open.points
            self._open = _Batch()
        # Over the memory bound: the oldest batches go to the spool file.
        while self._queued_points > self.max_buffer_points and len(self._queue) > 1:
            oldest = self._queue.popleft()
            self._queued_points -= oldest.points
            self._spill(oldest)

    def _spill(self, batch: _Batch) -> None:
        self.spool.parent.mkdir(parents=True, exist_ok=True)
        with self.spool.open("a") as f:
            f.write(json.dumps(batch.body()) + "\n")

    def _pending(self) -> bool:
        return bool(self._queue or self._sending or self._retry or self.spool.exists())

    def _next(self) -> _Batch | None:
        """The next batch to send: one that failed, then spooled ones (they are older
        than those in memory), then the oldest in memory."""
        if self._retry is not None:
            batch, self._retry = self._retry, None
            return batch
        if self.spool.exists():
            lines = self.spool.read_text().splitlines()
            if lines:
                batch = _Batch.of(json.loads(lines[0]))
                rest = lines[1:]
                if rest:
                    self.spool.write_text("\n".join(rest) + "\n")
                else:
                    self.spool.unlink()
                return batch
            self.spool.unlink()
        if self._queue:
            batch = self._queue.popleft()
            self._queued_points -= batch.points
            return batch
        return None

    def _loop(self) -> None:
        backoff = 0.1
        while True:
            with self._lock:
                if not self._pending():
                    self._lock.wait(self.flush_interval)
                    self._close_open()
                if self._closed and not self._pending():
                    return
                batch = self._next()
                if batch is None:
                    continue
                self._sending = batch.points or 1
            sent = self._send(batch)
            with self._lock:
                self._sending = 0
                if sent:
                    self.acked_points += batch.points
                    backoff = 0.1
                else:  # it goes first when the server answers again
                    self._retry = batch
                    self._close_open()
                self._lock.notify_all()
            if not sent:
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    def _send(self, batch: _Batch) -> bool:
        """True once the batch is acknowledged or refused for good; False to retry."""
        from cnai.tracking.transport import TransportError

        try:
            answer = self.client.http.post(
                self.client.url(f"/runs/{self.id}/log"), json=batch.body()
            )
        except TransportError as exc:
            log.debug("tracking server unreachable, will retry: %s", exc)
            return False
        if answer.status_code < 300:
            return True
        if answer.status_code == 413 and batch.points > 1:
            # Over the server's body limit: send it in halves (ids derived from the
            # batch's, so a resend after a lost answer is still applied once).
            first, second = batch.halves()
            return self._send(first) and self._send(second)
        if 400 <= answer.status_code < 500 and answer.status_code not in (408, 429):
            try:
                message = answer.json().get("message", answer.text)
            except ValueError:
                message = answer.text
            self.errors.append(message)
            log.warning("tracking refused a batch of run %s: %s", self.id, message)
            return True
        return False

    def _stop(self) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify_all()
        self._thread.join(timeout=5)

    def _at_exit(self) -> None:
        if not self._closed:
            self.flush(timeout=30)
            self._stop()


# -- the module-level API ------------------------------------------------------------------

_active: Run | None = None
_active_lock = threading.Lock()


def start_run(
    name: str = "",
    *,
    group: str | None = None,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    run_id: str | None = None,
    client: TrackingClient | None = None,
    system_metrics: float | None = None,
    **options: Any,
) -> Run:
    """Start a run (or attach to ``run_id``, or to ``$CNAI_RUN_ID`` inside a workload
    cnai started) and make it the active one for ``cnai.log_metrics`` and friends.
    ``system_metrics=10`` also logs CPU, memory and GPU metrics every 10 seconds."""
    global _active
    own = client is None
    client = client or TrackingClient()
    workload = not run_id and bool(os.environ.get(RUN_ID_ENV))
    run_id = run_id or os.environ.get(RUN_ID_ENV)
    if run_id:
        client.get_run(run_id)  # it must exist and be ours
    else:
        body: dict[str, Any] = {
            "name": name,
            "params": dict(params or {}),
            "tags": dict(tags or {}),
        }
        if group:
            body["group"] = group
        run_id = str(client.create_run(**body)["id"])
    run = Run(client, run_id, own_client=own, workload=workload, **options)
    if system_metrics:
        run.log_system_metrics(system_metrics)
    if params and os.environ.get(RUN_ID_ENV) == run_id:
        run.log_params(params)
    with _active_lock:
        _active = run
    return run


def _forget(run: Run) -> None:
    global _active
    with _active_lock:
        if _active is run:
            _active = None


def active_run() -> Run:
    """The active run; inside a workload cnai started, the one it names."""
    global _active
    with _active_lock:
        found = _active
    if found is None:
        if not os.environ.get(RUN_ID_ENV):
            raise TrackingError("no active run: call cnai.start_run() first")
        found = start_run()
    return found


def log_metrics(metrics: Mapping[str, float], step: int = 0, timestamp: int | None = None) -> None:
    active_run().log_metrics(metrics, step, timestamp)


def log_params(params: Mapping[str, Any]) -> None:
    active_run().log_params(params)


def set_tags(tags: Mapping[str, Any]) -> None:
    active_run().set_tags(tags)


def log_artifact(local_path: str | Path, artifact_path: str = "") -> None:
    active_run().log_artifact(local_path, artifact_path)


def register_model(
    name: str,
    artifact_path: str = "",
    *,
    source: str | None = None,
    format: str = "custom",
    metrics: Mapping[str, float] | None = None,
    signature: Mapping[str, Any] | None = None,
    aliases: Sequence[str] = (),
    description: str = "",
) -> dict[str, Any]:
    """Register the next version of model ``name`` from the active run's artifacts at
    ``artifact_path`` (or from ``source``, any URI), with lineage to the run; point
    ``aliases`` (e.g. ``["champion"]``) at it. Returns the ModelVersion; it resolves as
    ``models:/NAME/N`` and ``models:/NAME@ALIAS``."""
    run = active_run()
    if source is None:
        root = str(run.client.get_run(run.id)["artifactUri"]).rstrip("/")
        source = f"{root}/{artifact_path.strip('/')}" if artifact_path else root
    return run.client.register_model(
        name,
        source,
        runId=run.id,
        format=format,
        metrics=dict(metrics) if metrics else None,
        signature=dict(signature) if signature else None,
        aliases=list(aliases),
        description=description or None,
    )


def end_run(status: str = "FINISHED") -> None:
    global _active
    with _active_lock:
        run, _active = _active, None
    if run is not None:
        run.end(status)

"""Crash safety: SIGKILL the platform mid-write; every acknowledged write survives.

Writers create Secrets (and now and then a Namespace) as fast as they can and record
each create the server acknowledged. The platform is killed while they write, then
restarted on the same state directory: every acknowledged object must be there exactly
as acknowledged, everything stored must parse with its type, and the platform must
take new writes with resourceVersions still increasing.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from harness import RunningPlatform, start_platform, wait_until

from cnai import Client
from cnai.core.errors import ApiError, Unreachable
from cnai.core.kinds import Event, Namespace, Secret
from cnai.core.meta import Resource

WRITERS = 8
ACKED_BEFORE_KILL = 300  # acknowledged creates per round before the kill
NAMESPACE_EVERY = 20  # every so many writes, a writer creates a Namespace instead
ROUND_DEADLINE_S = 60.0


@dataclass
class Ledger:
    """What the server acknowledged: (kind, namespace, name) -> (uid, resourceVersion)."""

    acked: dict[tuple[str, str, str], tuple[str, int]] = field(default_factory=dict)
    failures: list[BaseException] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, obj: Resource) -> None:
        meta = obj.metadata
        key = (obj.kind, meta.namespace or "", meta.name)
        with self.lock:
            self.acked[key] = (meta.uid or "", int(meta.resource_version or 0))

    def count(self) -> int:
        with self.lock:
            return len(self.acked)


def _write_until_unreachable(
    platform: RunningPlatform, ledger: Ledger, prefix: str, stop: threading.Event
) -> None:
    n = 0
    with platform.client(timeout=10.0) as client:
        while not stop.is_set():
            n += 1
            name = f"{prefix}-{n}"
            try:
                if n % NAMESPACE_EVERY == 0:
                    obj: Resource = client.create(Namespace.new(name))
                else:
                    payload = {"k": "v" * (n % 200), "n": str(n)}
                    obj = client.create(Secret.new(name, "default", string_data=payload))
            except Unreachable:
                return  # the platform is gone: what was acknowledged is in the ledger
            except ApiError as exc:  # pragma: no cover - reported by the test
                ledger.failures.append(exc)
                return
            ledger.record(obj)


def _crash_while_writing(platform: RunningPlatform, ledger: Ledger, round_id: str) -> None:
    """Start the writers, SIGKILL the platform once enough writes were acknowledged."""
    stop = threading.Event()
    target = ledger.count() + ACKED_BEFORE_KILL
    threads = [
        threading.Thread(
            target=_write_until_unreachable,
            args=(platform, ledger, f"{round_id}-w{i}", stop),
            daemon=True,
        )
        for i in range(WRITERS)
    ]
    for t in threads:
        t.start()
    try:
        wait_until(
            lambda: ledger.count() >= target or bool(ledger.failures),
            timeout=ROUND_DEADLINE_S,
            what=f"{ACKED_BEFORE_KILL} acknowledged writes",
        )
        assert not ledger.failures, ledger.failures
        assert all(t.is_alive() for t in threads), "a writer stopped before the kill"
        platform.proc.kill()  # SIGKILL: no shutdown handler runs
        platform.proc.wait(timeout=30)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    assert not ledger.failures, ledger.failures


def _stored(client: Client) -> dict[tuple[str, str, str], Resource]:
    """Every stored Secret, Namespace and Event, each parsed with its pydantic type."""
    out: dict[tuple[str, str, str], Resource] = {}
    for kind in (Secret, Namespace, Event):
        listed = client.list(kind, all_namespaces=True)  # type: ignore[type-var]
        for obj in listed.items:
            assert isinstance(obj, kind)
            out[(obj.kind, obj.metadata.namespace or "", obj.metadata.name)] = obj
    return out


def _check_survivors(client: Client, ledger: Ledger) -> int:
    """Every acknowledged object is stored as acknowledged; returns the highest version."""
    stored = _stored(client)
    missing = sorted(set(ledger.acked) - set(stored))
    assert not missing, f"{len(missing)} acknowledged objects lost, e.g. {missing[:5]}"
    for key, (uid, rv) in ledger.acked.items():
        meta = stored[key].metadata
        assert (meta.uid, int(meta.resource_version or 0)) == (uid, rv), key
    for obj in stored.values():
        if isinstance(obj, Secret) and "-w" in obj.metadata.name:  # a writer's secret
            assert obj.string_data is None
            assert obj.decoded()["n"] == obj.metadata.name.rsplit("-", 1)[1]
    return max(int(o.metadata.resource_version or 0) for o in stored.values())


def _restart(home: Path) -> RunningPlatform:
    return start_platform(home)  # a new port: no writer of the killed one can reach it


def test_acknowledged_writes_survive_sigkill_and_the_platform_recovers(tmp_path: Path) -> None:
    home = tmp_path / "home"
    platform = start_platform(home)
    ledger = Ledger()
    try:
        for round_id in ("r1", "r2"):  # the second crash hits a store that recovered once
            _crash_while_writing(platform, ledger, round_id)
            platform = _restart(home)
            with platform.client() as client:
                highest = _check_survivors(client, ledger)
                listed_rv = int(client.list(Secret, "default").resource_version)
                assert listed_rv >= highest
                after = client.create(Secret.new(f"after-{round_id}", "default"))
                ledger.record(after)
                assert int(after.metadata.resource_version or 0) > listed_rv
                oldest = min(ledger.acked.items(), key=lambda kv: kv[1][1])[0]
                if oldest[0] == "Secret":
                    s = client.get(Secret, oldest[2], oldest[1])
                    s.metadata.labels = {"updated": "after-crash"}
                    ledger.record(client.update(s))
    finally:
        platform.stop(9)
    assert ledger.count() >= 2 * ACKED_BEFORE_KILL

"""RayRuntime: the Runtime protocol over a Ray cluster.

Each pod is one detached, named Ray actor (``pod-<uid>``, :mod:`.actor`) holding the
pod's cpu, gpu and memory requests; the actor runs the pod's command as a subprocess on
its Ray worker. The pod's env and working directory reach the worker through Ray's
``runtime_env`` (:mod:`.workdir`). A TrainJob gang reserves a placement group before any
member starts (:mod:`.placement`); a standalone pod bound to a Ray node's cnai Node runs
on that Ray node.

What the runtime reports:

- PENDING while the actor has not started the process: ``Unschedulable`` (no alive Ray
  node could ever hold the requests), ``WaitingForGang`` (the gang's placement group is
  not reserved yet) or ``WaitingForResources`` (room held by others, or runtime_env
  setup);
- RUNNING (address ""), then EXITED with the code and Completed / Error / Killed
  (stopped on request) / StartError, as the actor recorded it;
- EXITED with reason ``NodeLost``, no exit code and the Ray node named, when the node
  that ran the pod is gone: the pod controller fails the pod, and the owning job's
  failure policy applies (a TrainJob restarts its gang).

An ended pod's actor exits at once (it holds no resources); its output, the last 4 MiB
(``actor.LOG_KEEP_BYTES``), stays readable from the records. A lost node's output is
lost with it.

State lives in the cluster (:mod:`.records`), so a new RayRuntime, as after a platform
restart, observes, stops and reads the logs of pods launched by an earlier one. The
placement groups are named in the namespace of the Ray connection (``namespace``, when
this runtime makes the connection).

Ray's client API blocks: every call to it runs in a thread (``asyncio.to_thread``).
``ray`` itself is imported inside methods only, so ``cnai --help`` never loads it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from cnai.core.runtime import NodeInfo, Observation, PodLaunch, ProcessState
from cnai.runtimes.ray import actor as actor_module
from cnai.runtimes.ray.placement import (
    NODE_ID_LABEL,
    Gang,
    bundle,
    describe,
    fits_somewhere,
    gang_of,
    node_info,
    node_name,
    resources_of,
)
from cnai.runtimes.ray.records import Records
from cnai.runtimes.ray.workdir import runtime_env_of, upload_working_dir

log = logging.getLogger(__name__)

LOG_CHUNK_BYTES = 64 * 1024
LOG_POLL_SECONDS = 0.1
CALL_TIMEOUT_SECONDS = 10.0
# A launch claims the pod, then creates its actor: the first creation exports the actor
# class and may upload a working dir, which takes a while. Until it is done, or this long
# has passed (a launch cut short by a crash), a pod without an actor is still launching.
LAUNCH_GRACE_SECONDS = 120.0
_BUILTIN = {"CPU", "GPU", "memory"}  # Ray's own actor options; the rest are custom


def _when(epoch: float | None) -> datetime | None:
    return datetime.fromtimestamp(epoch, UTC) if epoch else None


def _exited(status: dict[str, Any]) -> Observation:
    return Observation(
        ProcessState.EXITED,
        exit_code=status.get("exitCode"),
        reason=str(status.get("reason", "")),
        message=str(status.get("message", "")),
        started_at=_when(status.get("startedAt")),
        finished_at=_when(status.get("finishedAt")),
    )


def _ray_nodes() -> list[dict[str, Any]]:
    """``ray.nodes()``: every node the cluster knows, alive or dead (blocks)."""
    import ray

    return list(ray.nodes())  # type: ignore[no-untyped-call]  # ray leaves it untyped


def _node_affinity(pod: dict[str, Any] | None) -> Any:
    """A standalone pod bound to a Ray node's cnai Node (``spec.nodeName``) runs on that
    Ray node, so cnai's accounting of the Node holds; None for any other pod. (A gang's
    members are placed by their placement group instead: see placement.py.)"""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    bound = str(((pod or {}).get("spec") or {}).get("nodeName") or "")
    if not bound.startswith("ray-"):
        return None
    for node in _ray_nodes():
        if node.get("Alive") and node_name(str(node["NodeID"])) == bound:
            return NodeAffinitySchedulingStrategy(str(node["NodeID"]), soft=False)
    return None  # gone: Ray places it, and observe reports where it ran


CONNECT_ATTEMPTS = 3
CONNECT_RETRY_S = 1.0


class RayRuntime:
    """Pods as Ray actors on the cluster at ``address`` (``None``: Ray's default, i.e.
    ``RAY_ADDRESS`` or a cluster on this machine, started if there is none)."""

    name = "ray"

    def __init__(self, address: str | None = None, *, namespace: str = "cnai") -> None:
        self.address = address
        self.namespace = namespace
        self.records = Records(namespace)
        self._owns_connection = False
        self._lock = threading.Lock()  # connect and gang creation run in many threads
        self._actor_class: Any = None
        self._released: set[str] = set()  # placement groups this runtime removed

    # -- connection ----------------------------------------------------------------

    def _connect(self) -> None:
        import ray

        with self._lock:
            if ray.is_initialized():
                return
            for attempt in range(CONNECT_ATTEMPTS):
                try:
                    ray.init(
                        address=self.address,
                        namespace=self.namespace,
                        ignore_reinit_error=True,
                        log_to_driver=False,
                        logging_level=logging.WARNING,
                    )
                    break
                except ConnectionError as exc:
                    # Over ray:// the client server forks a server per connection, and
                    # that start can fail now and then; a new connection gets a new one.
                    if attempt + 1 == CONNECT_ATTEMPTS:
                        raise
                    log.warning("connecting to Ray at %s failed (%s); again", self.address, exc)
                    ray.shutdown()
                    time.sleep(CONNECT_RETRY_S * (attempt + 1))
            self._owns_connection = True

    async def close(self) -> None:
        """Disconnect from the cluster if this runtime connected (pods keep running)."""
        import ray

        if self._owns_connection:
            await asyncio.to_thread(ray.shutdown)
            self._owns_connection = False

    def _pod_actor(self) -> Any:
        """The actor class, its module shipped by value (workers need no cnai)."""
        import ray
        from ray import cloudpickle

        if self._actor_class is None:
            cloudpickle.register_pickle_by_value(actor_module)  # type: ignore[no-untyped-call]
            self._actor_class = ray.remote(actor_module.PodProcess)
        return self._actor_class

    def _handle(self, uid: str) -> Any:
        """The pod's live actor, or None once it is gone (ended, killed, node lost)."""
        import ray

        try:
            return ray.get_actor(f"pod-{uid}", namespace=self.namespace)
        except ValueError:
            return None

    # -- launch ----------------------------------------------------------------------

    async def launch(self, pod: PodLaunch) -> None:
        await asyncio.to_thread(self._launch, pod)

    def _launch(self, pod: PodLaunch) -> None:
        self._connect()
        try:
            resources, gang = resources_of(pod.pod, pod.cpu_request), gang_of(pod.pod)
        except ValueError as exc:  # a bad quantity or placement strategy
            if self.records.claim(pod.uid, {"resources": {}}):
                self._start_failed(pod.uid, str(exc))
            return
        spec = {
            "resources": resources,
            "group": gang.group if gang else None,
            "gangSize": gang.size if gang else 0,
            "strategy": gang.strategy if gang else "",
            "claimedAt": datetime.now(UTC).timestamp(),
        }
        if not self.records.claim(pod.uid, spec):
            return  # launched before, by this runtime or an earlier one
        try:
            self._start_actor(pod, resources, gang)
            self.records.mark_created(pod.uid)
        except ValueError as exc:
            if "already taken" in str(exc):  # made by a launch cut short
                self.records.mark_created(pod.uid)
            else:
                self._start_failed(pod.uid, str(exc))
        except Exception as exc:  # Ray's own (RuntimeEnvSetupError, RaySystemError, ...)
            log.warning("pod %s: cannot create its Ray actor: %s", pod.uid, exc)
            self._start_failed(pod.uid, f"cannot create the pod's Ray actor: {exc}")

    def _start_failed(self, uid: str, message: str) -> None:
        now = datetime.now(UTC).timestamp()
        status = {"exitCode": None, "reason": "StartError", "message": message, "finishedAt": now}
        self.records.set_status(uid, status)

    def _start_actor(self, pod: PodLaunch, resources: dict[str, float], gang: Gang | None) -> None:
        """Create the pod's actor (its placement group first, for a gang member)."""
        options: dict[str, Any] = {}
        if gang is not None:
            options["scheduling_strategy"] = self._gang_strategy(gang, resources)
            self.records.join_gang(gang.group, pod.uid)
        elif (pinned := _node_affinity(pod.pod)) is not None:
            options["scheduling_strategy"] = pinned
        runtime_env = runtime_env_of(pod)
        wd = pod.working_dir
        actor_spec = {
            "uid": pod.uid,
            "kvNamespace": self.records.namespace,
            "command": list(pod.command),
            "envNames": sorted(pod.env),
            # A working dir that is neither uploaded nor a URI: a path on the worker.
            "cwd": os.path.expanduser(wd) if wd and "working_dir" not in runtime_env else None,
            "graceSeconds": pod.grace_seconds,
        }
        self._pod_actor().options(
            name=f"pod-{pod.uid}",
            namespace=self.namespace,
            lifetime="detached",
            max_restarts=0,
            num_cpus=resources.get("CPU", 0.0),
            num_gpus=resources.get("GPU", 0.0),
            memory=resources.get("memory"),
            resources={k: v for k, v in resources.items() if k not in _BUILTIN},
            runtime_env=upload_working_dir(runtime_env),
            **options,
        ).remote(actor_spec)

    def _gang_strategy(self, gang: Gang, resources: dict[str, float]) -> Any:
        """Schedule into bundle ``rank`` of the gang's group, made now if it is not there."""
        from ray.util import get_placement_group, placement_group
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        with self._lock:
            try:
                group = get_placement_group(gang.group)
            except ValueError:
                group = placement_group(
                    [bundle(resources)] * gang.size,
                    strategy=gang.strategy,
                    name=gang.group,
                    lifetime="detached",
                    bundle_label_selector=self._pinned(gang),
                )
        return PlacementGroupSchedulingStrategy(
            group, placement_group_bundle_index=gang.rank, placement_group_capture_child_tasks=False
        )

    @staticmethod
    def _pinned(gang: Gang) -> list[dict[str, str]] | None:
        """Bundle ``r`` on the Ray node cnai's scheduler placed rank ``r`` on, so the
        pods' nodeName is where they run; None (Ray places) if a node is not known."""
        if not gang.nodes:
            return None
        ids = {node_name(n["NodeID"]): n["NodeID"] for n in _ray_nodes() if n.get("Alive")}
        if not all(name in ids for name in gang.nodes):
            return None
        return [{NODE_ID_LABEL: ids[name]} for name in gang.nodes]

    # -- observe ---------------------------------------------------------------------

    async def observe(self, uid: str) -> Observation:
        return await asyncio.to_thread(self._observe, uid)

    def _observe(self, uid: str) -> Observation:
        self._connect()
        status = self.records.status(uid)
        spec = self.records.spec(uid) if status is None else None
        if status is None and spec is None:
            return Observation(ProcessState.NOT_FOUND)
        if status is None:
            status = self._ended_now(uid, spec or {})
        if status is None:
            started = self.records.started(uid)
            if started is None:
                return self._pending(spec or {})
            return Observation(ProcessState.RUNNING, started_at=_when(started.get("startedAt")))
        self._release_gang_if_done(uid)
        return _exited(status)

    def _ended_now(self, uid: str, spec: dict[str, Any]) -> dict[str, Any] | None:
        """The status of a pod whose actor is gone without recording one (its node was
        lost, or the actor died), recorded now; None while the pod is alive."""

        started = self.records.started(uid)
        if started is not None:
            node_id = str(started.get("nodeId", ""))
            alive = {str(n["NodeID"]) for n in _ray_nodes() if n.get("Alive")}
            if node_id in alive and self._handle(uid) is not None:
                return None
            lost = node_id not in alive
        elif self._handle(uid) is not None or self._launching(uid, spec):
            return None
        else:
            lost = False
        status = self.records.status(uid)  # the actor may have recorded it meanwhile
        if status is not None:
            return status
        if lost:
            status = {
                "reason": "NodeLost",
                "message": f"Ray node {node_name(node_id)} ({node_id}) was lost",
            }
        else:
            status = {
                "reason": "Unknown" if started else "StartError",
                "message": "the pod's Ray actor ended before it recorded how the process ended"
                if started
                else "the pod's Ray actor could not be created (see the Ray logs)",
            }
        status |= {
            "exitCode": None,
            "startedAt": (started or {}).get("startedAt"),
            "finishedAt": datetime.now(UTC).timestamp(),
        }
        self.records.set_status(uid, status)
        return status

    def _launching(self, uid: str, spec: dict[str, Any]) -> bool:
        """Whether a launch claimed the pod and may still be creating its actor (a spec
        without ``claimedAt``, written by an older cnai, is not waited for)."""
        if self.records.created(uid) or self.records.status(uid) is not None:
            return False
        claimed = float(spec.get("claimedAt") or 0.0)
        return datetime.now(UTC).timestamp() - claimed < LAUNCH_GRACE_SECONDS

    def _pending(self, spec: dict[str, Any]) -> Observation:
        """Why a launched pod's actor has not started its process yet."""
        from ray.util import get_placement_group, placement_group_table

        want: dict[str, float] = spec.get("resources") or {}
        if not fits_somewhere(want, _ray_nodes()):
            message = f"no alive Ray node has {describe(want)} in total"
            return Observation(ProcessState.PENDING, reason="Unschedulable", message=message)
        group = spec.get("group")
        if group:
            try:
                state = placement_group_table(get_placement_group(group)).get("state")
            except ValueError:
                state = "REMOVED"
            if state != "CREATED":
                message = (
                    f"Ray placement group {group} ({spec.get('strategy')}) is {state}: "
                    f"waiting for room for all {spec.get('gangSize')} members "
                    f"({describe(bundle(want))} each)"
                )
                return Observation(ProcessState.PENDING, reason="WaitingForGang", message=message)
        message = f"the Ray actor waits for {describe(want)} or for its runtime_env"
        return Observation(ProcessState.PENDING, reason="WaitingForResources", message=message)

    def _release_gang_if_done(self, uid: str) -> None:
        """Free a gang's placement group once every member ended (no restart of a
        generation reuses it: the next start of the gang is a new group)."""
        spec = self.records.spec(uid) or {}
        group, size = spec.get("group"), int(spec.get("gangSize") or 0)
        if not group or group in self._released:
            return
        members = self.records.gang_members(group)
        if len(members) >= size and all(self.records.status(m) for m in members):
            self._remove_group(group)

    def _remove_group(self, group: str) -> None:
        from ray.util import get_placement_group, remove_placement_group

        with contextlib.suppress(ValueError):  # removed before
            remove_placement_group(get_placement_group(group))
        self._released.add(group)

    # -- stop and remove -------------------------------------------------------------

    async def stop(self, uid: str, grace_seconds: float) -> None:
        await asyncio.to_thread(self._stop, uid, grace_seconds)

    def _stop(self, uid: str, grace_seconds: float) -> None:
        import ray

        self._connect()
        if self.records.status(uid) is not None or self.records.spec(uid) is None:
            return
        handle = self._handle(uid)
        if self.records.started(uid) is not None:
            if handle is not None:
                handle.terminate.remote(grace_seconds)  # the actor runs the grace timer
            return
        # Never started (waiting for room or for its gang): it ends here.
        if handle is not None:
            ray.kill(handle, no_restart=True)
        if self.records.started(uid) is None and self.records.status(uid) is None:
            now = datetime.now(UTC).timestamp()
            message = "stopped before it started"
            self.records.set_status(
                uid, {"exitCode": None, "reason": "Killed", "message": message, "finishedAt": now}
            )

    async def remove(self, uid: str) -> None:
        await asyncio.to_thread(self._remove, uid)

    def _remove(self, uid: str) -> None:
        import ray
        from ray.exceptions import GetTimeoutError, RayActorError

        self._connect()
        spec = self.records.spec(uid)
        handle = self._handle(uid)
        if handle is not None:
            if self.records.started(uid) is not None:
                # Kill the whole process group first: killing the actor kills only
                # its direct child. (An actor not started yet would never answer.)
                with contextlib.suppress(RayActorError, GetTimeoutError):
                    ray.get(handle.terminate.remote(0), timeout=CALL_TIMEOUT_SECONDS)
            ray.kill(handle, no_restart=True)
        group = (spec or {}).get("group")
        self.records.forget(uid, group)
        if group and not self.records.gang_members(group):
            self._remove_group(group)

    async def known_pods(self) -> list[str]:
        await asyncio.to_thread(self._connect)
        return await asyncio.to_thread(self.records.uids)

    # -- logs and nodes ----------------------------------------------------------------

    async def logs(
        self, uid: str, *, follow: bool = False, offset: int = 0
    ) -> AsyncIterator[bytes]:
        position = max(0, offset)
        while True:
            # Decide "ended" before reading: all output written until then is read below.
            state = (await self.observe(uid)).state
            if state is ProcessState.NOT_FOUND:
                return
            ended = not follow or state is ProcessState.EXITED
            while True:
                chunk, position = await asyncio.to_thread(self._read_logs, uid, position)
                if not chunk:
                    break
                yield chunk
            if ended:
                return
            await asyncio.sleep(LOG_POLL_SECONDS)

    def _read_logs(self, uid: str, position: int) -> tuple[bytes, int]:
        """Up to a chunk of output from ``position`` and the position after it: from the
        actor while it runs, from the records once it ended (they keep the last
        ``actor.LOG_KEEP_BYTES``: an offset before those starts where they start)."""
        import ray
        from ray.exceptions import GetTimeoutError, RayActorError

        status = self.records.status(uid)
        if status is None and self.records.started(uid) is not None:
            handle = self._handle(uid)
            if handle is not None:
                try:
                    ref = handle.read_logs.remote(position, LOG_CHUNK_BYTES)
                    chunk = bytes(ray.get(ref, timeout=CALL_TIMEOUT_SECONDS))
                    return chunk, position + len(chunk)
                except (RayActorError, GetTimeoutError):
                    pass  # ended meanwhile: its output is in the records now, if at all
            status = self.records.status(uid)
        if status is None:
            return b"", position
        start = int(status.get("logsFrom") or 0)
        position = max(position, start)
        chunk = self.records.logs(uid)[position - start : position - start + LOG_CHUNK_BYTES]
        return chunk, position + len(chunk)

    async def nodes(self) -> list[NodeInfo]:
        """One Node per alive Ray node (see :func:`.placement.node_name` for names)."""

        await asyncio.to_thread(self._connect)
        found = await asyncio.to_thread(_ray_nodes)
        return sorted((node_info(n) for n in found if n.get("Alive")), key=lambda n: n.name)

    async def node(self) -> NodeInfo:
        """The Ray head node (the protocol's one machine; :meth:`nodes` has them all)."""

        await asyncio.to_thread(self._connect)
        alive = [n for n in await asyncio.to_thread(_ray_nodes) if n.get("Alive")]
        heads = [n for n in alive if "node:__internal_head__" in (n.get("Resources") or {})]
        if not (heads or alive):
            raise RuntimeError("the Ray cluster has no alive node")
        return node_info((heads or alive)[0])

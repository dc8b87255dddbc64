"""What the Ray runtime remembers of each pod, in Ray's internal KV store.

The cluster, not the platform process, holds the state (as the local runtime's pod
directories do), so a new runtime, after the platform restarted, adopts every pod:

- ``pod/<uid>/spec``: written once by ``launch`` (it is the launch's idempotency claim):
  the actor's name, its resources, its gang's placement group;
- ``pod/<uid>/created``: written by ``launch`` once Ray took the actor (its name is
  registered), so that a look at the pod between the claim and then is not taken for
  an actor that could not be created;
- ``pod/<uid>/started``: written by the actor once the process started (Ray node, time);
- ``pod/<uid>/status``: how the process ended, written by the actor (or by the runtime
  for a pod whose node was lost or that was stopped before it started);
- ``pod/<uid>/logs``: the output's last bytes, written by the actor before the status;
- ``gang/<group>/<uid>``: one key per member of a gang that was launched.

Keep the key names in sync with actor.py. Every function here blocks on the cluster:
call it in a thread. ``ray`` is imported inside them only.
"""

from __future__ import annotations

import json
from typing import Any

SPEC = "pod/{uid}/spec"
CREATED = "pod/{uid}/created"
STARTED = "pod/{uid}/started"
STATUS = "pod/{uid}/status"
LOGS = "pod/{uid}/logs"
GANG_MEMBER = "gang/{group}/{uid}"


class Records:
    """The KV records of one runtime namespace."""

    def __init__(self, namespace: str) -> None:
        self.namespace = f"cnai-{namespace}"

    def _put(self, key: str, value: bytes) -> None:
        from ray.experimental import internal_kv

        internal_kv._internal_kv_put(key, value, True, namespace=self.namespace)

    def _get(self, key: str) -> bytes | None:
        from ray.experimental import internal_kv

        value = internal_kv._internal_kv_get(key, namespace=self.namespace)
        return value if isinstance(value, bytes) else None

    def _keys(self, prefix: str) -> list[str]:
        from ray.experimental import internal_kv

        keys = internal_kv._internal_kv_list(prefix, namespace=self.namespace)
        return [k.decode() if isinstance(k, bytes) else str(k) for k in keys]

    def _json(self, key: str) -> dict[str, Any] | None:
        raw = self._get(key)
        return json.loads(raw) if raw else None

    def claim(self, uid: str, spec: dict[str, Any]) -> bool:
        """Write the pod's spec unless there is one: True if this call wrote it."""
        from ray.experimental import internal_kv

        key, value = SPEC.format(uid=uid), json.dumps(spec).encode()
        # _internal_kv_put returns whether the key was already there.
        existed = internal_kv._internal_kv_put(key, value, False, namespace=self.namespace)
        return not existed

    def spec(self, uid: str) -> dict[str, Any] | None:
        return self._json(SPEC.format(uid=uid))

    def mark_created(self, uid: str) -> None:
        self._put(CREATED.format(uid=uid), b"1")

    def created(self, uid: str) -> bool:
        return self._get(CREATED.format(uid=uid)) is not None

    def started(self, uid: str) -> dict[str, Any] | None:
        return self._json(STARTED.format(uid=uid))

    def status(self, uid: str) -> dict[str, Any] | None:
        return self._json(STATUS.format(uid=uid))

    def set_status(self, uid: str, status: dict[str, Any]) -> None:
        self._put(STATUS.format(uid=uid), json.dumps(status).encode())

    def logs(self, uid: str) -> bytes:
        return self._get(LOGS.format(uid=uid)) or b""

    def uids(self) -> list[str]:
        """Every pod with a spec record."""
        return sorted(key.split("/")[1] for key in self._keys("pod/") if key.endswith("/spec"))

    def join_gang(self, group: str, uid: str) -> None:
        self._put(GANG_MEMBER.format(group=group, uid=uid), b"")

    def gang_members(self, group: str) -> list[str]:
        return [key.rsplit("/", 1)[1] for key in self._keys(f"gang/{group}/")]

    def forget(self, uid: str, group: str | None) -> None:
        from ray.experimental import internal_kv

        internal_kv._internal_kv_del(f"pod/{uid}/", del_by_prefix=True, namespace=self.namespace)
        if group:
            key = GANG_MEMBER.format(group=group, uid=uid)
            internal_kv._internal_kv_del(key, namespace=self.namespace)

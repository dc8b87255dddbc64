"""Pure write rules shared by every Store: what create, update and delete do to an object.

These mirror the Kubernetes API server's registry strategies, so an object means the
same thing whichever store holds it.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from cnai.core.errors import BadRequest, FieldError, Invalid
from cnai.core.store.protocol import Obj, PropagationPolicy

# Top-level keys that are not part of "spec" for generation purposes. Every other
# top-level key (spec, or data/type for a Secret) is desired state.
_NON_SPEC_KEYS = frozenset({"apiVersion", "kind", "metadata", "status"})
# Metadata the server owns: clients cannot change it with an update.
_SERVER_META = ("uid", "creationTimestamp", "deletionTimestamp", "generation", "namespace", "name")


def _ts(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def desired_state(obj: Obj) -> dict[str, Any]:
    """The part of an object whose change bumps generation."""
    return {k: v for k, v in obj.items() if k not in _NON_SPEC_KEYS}


def prepare_create(obj: Obj, *, uid: str, now: datetime) -> Obj:
    """Fill the server-owned metadata of a new object; status starts as the client sent it."""
    # Only metadata is changed: copy it, share the rest (the caller's dict is not touched).
    out = dict(obj)
    meta = out["metadata"] = dict(obj.get("metadata") or {})
    meta["uid"] = uid
    meta["creationTimestamp"] = _ts(now)
    meta["generation"] = 1
    meta.pop("deletionTimestamp", None)
    meta.pop("resourceVersion", None)
    return out


def prepare_update(old: Obj, new: Obj) -> Obj:
    """The stored object after an update: new spec and metadata, old status and identity."""
    out = copy.deepcopy(new)
    meta = out.setdefault("metadata", {})
    old_meta = old["metadata"]
    for key in _SERVER_META:
        if key in old_meta:
            meta[key] = old_meta[key]
        else:
            meta.pop(key, None)
    if old_meta.get("deletionTimestamp"):
        added = set(meta.get("finalizers", [])) - set(old_meta.get("finalizers", []))
        if added:
            raise Invalid.of(
                [FieldError("metadata.finalizers", "cannot add finalizers while deleting")]
            )
    if "status" in old:
        out["status"] = copy.deepcopy(old["status"])
    else:
        out.pop("status", None)
    if desired_state(old) != desired_state(out):
        meta["generation"] = int(old_meta.get("generation") or 1) + 1
    return out


def prepare_status_update(old: Obj, new: Obj) -> Obj:
    """The stored object after a status update: everything old except status."""
    out = copy.deepcopy(old)
    if "status" in new:
        out["status"] = copy.deepcopy(new["status"])
    else:
        out.pop("status", None)
    return out


def mark_deleted(old: Obj, now: datetime) -> Obj:
    """Mark an object with finalizers as being deleted (idempotent)."""
    out = copy.deepcopy(old)
    out["metadata"].setdefault("deletionTimestamp", _ts(now))
    return out


def parse_propagation(value: str | None) -> PropagationPolicy:
    """The propagation policy a delete asked for (Background when None)."""
    if value is None:
        return PropagationPolicy.BACKGROUND
    try:
        return PropagationPolicy(value)
    except ValueError:
        allowed = ", ".join(p.value for p in PropagationPolicy)
        raise BadRequest(f"propagationPolicy: must be one of {allowed}") from None


def prepare_delete(old: Obj, now: datetime, propagation: PropagationPolicy) -> Obj | None:
    """The object after a delete request, or None when it must be removed now.

    Foreground and Orphan put their finalizer on the object (replacing the other one,
    as Kubernetes does) and mark it, in one write. Returns ``old`` itself when the
    request changes nothing (already marked with the same finalizers).
    """
    finalizers = list(old["metadata"].get("finalizers") or [])
    wanted = propagation.finalizer
    if wanted is not None:
        others = {p.finalizer for p in PropagationPolicy} - {wanted, None}
        finalizers = [f for f in finalizers if f not in others]
        if wanted not in finalizers:
            finalizers.append(wanted)
    if not finalizers:
        return None
    if old["metadata"].get("deletionTimestamp") and finalizers == old["metadata"].get("finalizers"):
        return old
    out = mark_deleted(old, now)
    out["metadata"]["finalizers"] = finalizers
    return out


def is_released(obj: Obj) -> bool:
    """True when a deleted object has no finalizers left and must go now."""
    meta = obj["metadata"]
    return bool(meta.get("deletionTimestamp")) and not meta.get("finalizers")

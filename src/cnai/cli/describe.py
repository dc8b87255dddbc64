"""`cnai describe`: one object in human-readable form, followed by its events.

The layout follows kubectl: identity and metadata first, then the object's own fields
(spec-like ones, then Status) as indented YAML, then an ``Events:`` table of the Events
whose ``involvedObject.uid`` is this object's.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from cnai.cli.options import NamespaceOpt, connect, namespace_or_default, resolve_kind, utcnow
from cnai.cli.printers import NONE, age_of, parse_time, table
from cnai.cli.redaction import Reveal, present
from cnai.core.client import Client
from cnai.core.errors import ApiError
from cnai.core.manifests import dump_yaml

LABEL_WIDTH = 14  # "Annotations:" and two blanks, so values line up as in kubectl
EVENTS_NAMESPACE = "default"  # where events about cluster-scoped objects are recorded
_EPOCH = datetime.min.replace(tzinfo=UTC)
_META_FIELDS = frozenset({"apiVersion", "kind", "metadata", "status"})


def register(app: typer.Typer) -> None:
    app.command("describe")(describe)


def describe(
    kind: Annotated[str, typer.Argument(help="Kind: plural, singular, short name or Kind.")],
    name: Annotated[str, typer.Argument(help="Name of the object.")],
    namespace: NamespaceOpt = None,
    reveal: Annotated[
        bool, typer.Option("--reveal", help="Show Secret values decoded as text.")
    ] = False,
) -> None:
    """Show one object in detail, with the events recorded about it."""
    with connect() as client:
        view = resolve_kind(client, kind)
        obj = client.get(view.ref.plural, name, namespace_or_default(client, namespace))
        shown = present(obj.to_dict(), Reveal.DECODED if reveal else Reveal.HIDDEN)
        now = utcnow()
        typer.echo("\n".join(describe_lines(shown, now)))
        position = queue_position_text(client, view.ref.kind, obj.to_dict())
        if position is not None:
            typer.echo(_pair("Position", position))
        if view.ref.kind == "Experiment":
            from cnai.cli.tuning_cmds import trial_lines

            typer.echo("\n".join(trial_lines(client, obj.to_dict())))
        typer.echo("\n".join(event_lines(fetch_events(client, shown), now)))


def queue_position_text(client: Client, kind: str, obj: dict[str, Any]) -> str | None:
    """The live position in its LocalQueue of a Workload, or of the Workload a pending
    object (a Job...) owns: computed now, never stored, since it moves with every
    admission ahead of it. None when there is nothing to say (not a Workload, and not
    a pending object that owns one)."""
    from cnai.scheduling.api import PriorityClass, Workload
    from cnai.scheduling.snapshots import queue_position

    meta, status = obj.get("metadata") or {}, obj.get("status") or {}
    if kind != "Workload" and (status.get("phase") != "Pending" or not meta.get("namespace")):
        return None
    try:
        others = client.list(Workload, meta.get("namespace")).items
        if kind == "Workload":
            wl: Workload | None = Workload.model_validate(obj)
        else:
            owned = (
                w
                for w in others
                if any(o.uid == meta.get("uid") for o in w.metadata.owner_references)
            )
            wl = next(owned, None)
        if wl is None:
            return None
        at = queue_position(wl, others, client.list(PriorityClass).items)
    except ApiError as exc:
        return f"<unavailable: {exc.message}>"
    return NONE if at is None else f"{at} in queue {wl.spec.queue_name}"


def describe_lines(obj: dict[str, Any], now: datetime) -> list[str]:
    """The metadata block, then each spec-like field, then Status (no events)."""
    lines = [*metadata_lines(obj.get("metadata") or {}, now), ""]
    for key, value in obj.items():
        if key not in _META_FIELDS:
            lines.extend(field_lines(title(key), value))
    if "status" in obj:
        lines.extend(field_lines("Status", obj["status"]))
    return lines


def metadata_lines(meta: dict[str, Any], now: datetime) -> list[str]:
    created = meta.get("creationTimestamp")
    lines = [
        _pair("Name", meta.get("name", "")),
        *([_pair("Namespace", meta["namespace"])] if meta.get("namespace") else []),
        *_mapping("Labels", meta.get("labels") or {}),
        *_mapping("Annotations", meta.get("annotations") or {}),
        _pair("UID", meta.get("uid") or NONE),
        _pair("Created", f"{created} ({age_of(created, now)} ago)" if created else NONE),
    ]
    if meta.get("finalizers"):
        lines.append(_pair("Finalizers", ", ".join(meta["finalizers"])))
    if meta.get("deletionTimestamp"):
        lines.append(_pair("Deletion", f"requested at {meta['deletionTimestamp']}"))
    for owner in meta.get("ownerReferences") or []:
        lines.append(_pair("Owned By", f"{owner.get('kind')}/{owner.get('name')}"))
    return lines


def field_lines(label: str, value: Any) -> list[str]:
    """A scalar on the label's line; mappings and lists as YAML indented below it."""
    if isinstance(value, dict | list):
        if not value:
            return [_pair(label, NONE)]
        body = dump_yaml(value).rstrip("\n").splitlines()
        return [f"{label}:", *(f"  {line}" for line in body)]
    return [_pair(label, NONE if value is None or value == "" else _scalar(value))]


def title(key: str) -> str:
    """``involvedObject`` -> ``Involved Object``, the way kubectl labels fields."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", key)
    return words[:1].upper() + words[1:]


def fetch_events(client: Client, obj: dict[str, Any]) -> list[dict[str, Any]] | str:
    """The events about ``obj``, oldest first, or why they could not be listed."""
    meta = obj.get("metadata") or {}
    if not meta.get("uid"):
        return []
    try:
        listed = client.list(
            "events",
            meta.get("namespace") or EVENTS_NAMESPACE,
            field_selector=f"involvedObject.uid={meta['uid']}",
        )
    except ApiError as exc:
        # The object itself was readable; a token that may not list events there should
        # still see the description.
        return f"<unavailable: {exc.message}>"
    events = [present(e.to_dict()) for e in listed.items]
    return sorted(events, key=lambda e: parse_time(_last_seen(e)) or _EPOCH)


def event_lines(events: list[dict[str, Any]] | str, now: datetime) -> list[str]:
    if isinstance(events, str) or not events:
        return ["", _pair("Events", events or NONE)]
    rows = [["TYPE", "REASON", "AGE", "FROM", "MESSAGE"]]
    rows += [_event_row(e, now) for e in events]
    return ["", "Events:", *(f"  {line}" for line in table(rows))]


def _event_row(event: dict[str, Any], now: datetime) -> list[str]:
    age = age_of(_last_seen(event), now)
    count, first = event.get("count") or 1, event.get("firstTimestamp")
    if count > 1 and first:
        age = f"{age} (x{count} over {age_of(first, now)})"
    source = (event.get("source") or {}).get("component") or NONE
    return [
        str(event.get("type", "")),
        str(event.get("reason", "")),
        age,
        str(source),
        str(event.get("message", "")),
    ]


def _last_seen(event: dict[str, Any]) -> Any:
    meta = event.get("metadata") or {}
    return (
        event.get("lastTimestamp") or event.get("firstTimestamp") or meta.get("creationTimestamp")
    )


def _pair(label: str, value: Any) -> str:
    return f"{label + ':':<{LABEL_WIDTH}}{value}"


def _mapping(label: str, values: dict[str, Any]) -> list[str]:
    """``key=value`` one per line, the first on the label's line (kubectl's layout)."""
    if not values:
        return [_pair(label, NONE)]
    items = [f"{k}={v}" for k, v in sorted(values.items())]
    return [_pair(label, items[0]), *(" " * LABEL_WIDTH + i for i in items[1:])]


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)

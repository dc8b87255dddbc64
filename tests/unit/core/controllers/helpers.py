"""Helpers for controller tests: bounded polling, an event recorder, made-up kinds."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import ClassVar

from cnai.core.meta import Resource
from cnai.core.registry import KindInfo, Registry
from cnai.core.store.protocol import Obj

from ..builders import make_obj

DEADLINE = 5.0  # generous: only a broken implementation ever waits this long


async def eventually(check: Callable[[], bool], what: str = "condition") -> None:
    """Poll ``check`` every 10 ms until it holds; fail after DEADLINE seconds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + DEADLINE
    while not check():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


class Widget(Resource):
    KIND: ClassVar[str] = "Widget"
    PLURAL: ClassVar[str] = "widgets"


class Gadget(Resource):
    KIND: ClassVar[str] = "Gadget"
    PLURAL: ClassVar[str] = "gadgets"


class Cluster(Resource):
    KIND: ClassVar[str] = "Cluster"
    PLURAL: ClassVar[str] = "clusters"
    NAMESPACED: ClassVar[bool] = False


def make_registry() -> Registry:
    registry = Registry()
    for model in (Widget, Gadget, Cluster):
        registry.register(KindInfo(model=model))
    return registry


def widget(name: str, namespace: str = "default", **labels: str) -> Obj:
    return make_obj("Widget", name, namespace).labels(labels).spec(size=1).build()


def gadget(
    name: str,
    owner: str | None = None,
    *,
    controller: bool = True,
    kind: str = "Widget",
    namespace: str = "default",
) -> Obj:
    b = make_obj("Gadget", name, namespace).spec(size=1)
    if owner is not None:
        ref = {
            "apiVersion": "cnai.io/v1alpha1",
            "kind": kind,
            "name": owner,
            "uid": "u-" + owner,
            "controller": controller,
        }
        b.meta("ownerReferences", [ref])
    return b.build()


class Recorder:
    """Informer handlers that record (event, name) pairs."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def on_add(self, obj: Obj) -> None:
        self.events.append(("add", obj["metadata"]["name"]))

    def on_update(self, old: Obj, new: Obj) -> None:
        assert old["metadata"]["name"] == new["metadata"]["name"]
        self.events.append(("update", new["metadata"]["name"]))

    def on_delete(self, obj: Obj) -> None:
        self.events.append(("delete", obj["metadata"]["name"]))

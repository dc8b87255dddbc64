"""A capability plugs a kind into the platform and gets routes, admission, discovery and
OpenAPI with no change to the kernel: the registration path later packages use."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from pydantic import Field

from cnai import platform as platform_module
from cnai.core.auth import TokenAuthority
from cnai.core.errors import FieldError
from cnai.core.kinds import Namespace
from cnai.core.meta import Resource, WireModel
from cnai.core.registry import Column, KindInfo
from cnai.core.resources import ResourceService
from cnai.core.runtime import NodeInfo, Observation, PodLaunch, ProcessState
from cnai.core.server.app import PREFIX, create_app
from cnai.core.store.sqlite import SQLiteStore
from cnai.platform import Platform, PlatformOptions

pytestmark = pytest.mark.anyio


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class WidgetSpec(WireModel):
    replicas: int | None = Field(default=None, description="How many.")
    color: str = Field(default="", description="A color.")


class WidgetStatus(WireModel):
    ready: int = Field(default=0, description="How many are ready.")


class Widget(Resource):
    KIND: ClassVar[str] = "Widget"
    PLURAL: ClassVar[str] = "widgets"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("wd",)

    spec: WidgetSpec = Field(default_factory=WidgetSpec, description="Desired state.")
    status: WidgetStatus = Field(default_factory=WidgetStatus, description="Observed state.")


def _default_replicas(widget: Widget, old: Widget | None) -> None:
    if widget.spec.replicas is None:
        widget.spec.replicas = 1


def _at_most_ten(widget: Widget, old: Widget | None) -> list[FieldError]:
    if (widget.spec.replicas or 0) > 10:
        return [FieldError("spec.replicas", "must be at most 10")]
    return []


class WidgetCapability:
    """What a capability package's module exposes: ``register(platform)``."""

    def register(self, platform: Platform) -> None:
        platform.registry.register(
            KindInfo(
                Widget,
                columns=(
                    Column("REPLICAS", "spec.replicas"),
                    Column("COLOR", "spec.color", wide=True),
                ),
                defaulters=(_default_replicas,),
                validators=(_at_most_ten,),
            )
        )


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    platform = Platform(PlatformOptions(home=tmp_path), capabilities=[WidgetCapability()])
    store = SQLiteStore(tmp_path / "state.db")
    service = ResourceService(platform.registry, store)
    await service.create("namespaces", Namespace.new("default").to_dict())
    tokens = TokenAuthority(store)
    token, _ = await tokens.issue(None)
    app, _ = create_app(service, tokens)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://cnai.test") as http:
        yield http, token
    await store.close()


def widget(name: str, **spec: object) -> dict[str, object]:
    return {
        "apiVersion": "cnai.io/v1alpha1",
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": spec,
    }


async def test_registered_kind_is_served_with_its_defaulting(
    client: tuple[httpx.AsyncClient, str],
) -> None:
    http, token = client
    auth = {"Authorization": f"Bearer {token}"}
    url = f"{PREFIX}/namespaces/default/widgets"
    created = await http.post(url, json=widget("w1", color="red"), headers=auth)
    assert created.status_code == 201, created.text
    assert created.json()["spec"] == {"replicas": 1, "color": "red"}
    assert created.json()["status"] == {"ready": 0}
    got = await http.get(f"{url}/w1", headers=auth)
    assert got.json()["metadata"]["uid"] == created.json()["metadata"]["uid"]


async def test_registered_validator_names_the_field(client: tuple[httpx.AsyncClient, str]) -> None:
    http, token = client
    auth = {"Authorization": f"Bearer {token}"}
    url = f"{PREFIX}/namespaces/default/widgets"
    resp = await http.post(url, json=widget("w2", replicas=11), headers=auth)
    assert resp.status_code == 422
    assert resp.json()["details"]["causes"] == [
        {"field": "spec.replicas", "message": "must be at most 10", "reason": "FieldValueInvalid"}
    ]
    typo = await http.post(url, json=widget("w3", replicaz=2), headers=auth)
    assert typo.status_code == 422
    assert typo.json()["details"]["causes"][0]["field"] == "spec.replicaz"
    assert (await http.get(f"{url}/w2", headers=auth)).status_code == 404


async def test_registered_kind_appears_in_discovery_and_openapi(
    client: tuple[httpx.AsyncClient, str],
) -> None:
    http, token = client
    auth = {"Authorization": f"Bearer {token}"}
    resources = (await http.get(PREFIX, headers=auth)).json()["resources"]
    entry = next(r for r in resources if r["name"] == "widgets")
    assert entry["shortNames"] == ["wd"]
    assert [c["name"] for c in entry["columns"]] == ["REPLICAS", "COLOR"]
    doc = (await http.get("/openapi.json", headers=auth)).json()
    assert "Widget" in doc["components"]["schemas"]
    assert f"{PREFIX}/namespaces/{{namespace}}/widgets/{{name}}/status" in doc["paths"]


def test_a_kind_name_cannot_be_registered_twice(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="already registered"):
        Platform(
            PlatformOptions(home=tmp_path), capabilities=[WidgetCapability(), WidgetCapability()]
        )


# -- a multi-node runtime (Ray) wired in: one Node per machine, one pod controller --------


@dataclass
class FakeRay:
    """Stands in for cnai.runtimes.ray.RayRuntime (the platform's wiring is under test,
    not Ray): machines the test adds and removes, processes that run until told."""

    name: str = "ray"
    machines: list[str] = field(default_factory=lambda: ["ray-a", "ray-b"])
    launched: dict[str, str] = field(default_factory=dict)  # uid: pod name
    closed: bool = False

    async def nodes(self) -> list[NodeInfo]:
        cap = {"cpu": "2", "memory": "4Gi"}
        return [NodeInfo(m, cap, dict(cap)) for m in self.machines]

    async def node(self) -> NodeInfo:
        return (await self.nodes())[0]

    async def launch(self, pod: PodLaunch) -> None:
        self.launched[pod.uid] = pod.name

    async def stop(self, uid: str, grace_seconds: float) -> None:
        self.launched.pop(uid, None)

    async def observe(self, uid: str) -> Observation:
        state = ProcessState.RUNNING if uid in self.launched else ProcessState.NOT_FOUND
        return Observation(state)

    async def known_pods(self) -> list[str]:
        return list(self.launched)

    async def logs(
        self, uid: str, *, follow: bool = False, offset: int = 0
    ) -> AsyncIterator[bytes]:
        yield b""

    async def remove(self, uid: str) -> None:
        self.launched.pop(uid, None)

    async def close(self) -> None:
        self.closed = True


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_the_ray_runtime_is_one_node_per_machine_refreshed_while_serving(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ray = FakeRay()
    opened: list[tuple[str, Path]] = []

    def open_ray(address: str, home: Path) -> FakeRay:
        opened.append((address, home))
        return ray

    monkeypatch.setattr(platform_module, "open_ray_runtime", open_ray)
    monkeypatch.setattr(platform_module, "RAY_NODE_REFRESH_S", 0.02)
    options = PlatformOptions(home=tmp_path, port=free_port(), ray_address="ray://head:10001")
    platform = Platform(options, capabilities=[])
    serving = asyncio.create_task(platform.serve())
    try:
        await eventually(lambda: _started(platform))
        assert opened == [("ray://head:10001", tmp_path)]
        assert platform.store is not None
        service = ResourceService(platform.registry, platform.store)

        async def node(name: str) -> dict[str, Any]:
            return await service.get("nodes", None, name)

        assert (await node("ray-b"))["status"]["runtime"] == "ray"
        # 1. An unbound pod goes to a machine where it fits, and runs there.
        body = {"metadata": {"name": "p", "namespace": "default"}, "spec": {"command": ["x"]}}
        await service.create("pods", {"apiVersion": "cnai.io/v1alpha1", "kind": "Pod", **body})
        await eventually(lambda: _has(ray.launched, "p"))
        assert (await service.get("pods", "default", "p"))["spec"]["nodeName"] == "ray-a"
        # 2. A machine that dies is noticed by the refresh loop; a new one is served.
        ray.machines = ["ray-b", "ray-c"]
        await eventually(lambda: _lost(service, "ray-a"))
        assert (await node("ray-a"))["spec"]["unschedulable"] is True
        on_c = {**body, "metadata": {"name": "q", "namespace": "default"}}
        on_c["spec"] = {"command": ["x"], "nodeName": "ray-c"}
        await service.create("pods", {"apiVersion": "cnai.io/v1alpha1", "kind": "Pod", **on_c})
        await eventually(lambda: _has(ray.launched, "q"))
    finally:
        assert platform.server is not None
        platform.server.should_exit = True
        await serving
    assert ray.closed


async def _started(platform: Platform) -> bool:
    return platform.server is not None and platform.server.started


async def _has(launched: dict[str, str], name: str) -> bool:
    return name in launched.values()


async def _lost(service: ResourceService, name: str) -> bool:
    conditions = (await service.get("nodes", None, name))["status"]["conditions"]
    return [c["reason"] for c in conditions] == ["NodeLost"]

"""A capability plugs a kind into the platform and gets routes, admission, discovery and
OpenAPI with no change to the kernel: the registration path later packages use."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import ClassVar

import httpx
import pytest
from pydantic import Field

from cnai.core.auth import TokenAuthority
from cnai.core.errors import FieldError
from cnai.core.kinds import Namespace
from cnai.core.meta import Resource, WireModel
from cnai.core.registry import Column, KindInfo
from cnai.core.resources import ResourceService
from cnai.core.server.app import PREFIX, create_app
from cnai.core.store.sqlite import SQLiteStore
from cnai.platform import Platform, PlatformOptions

pytestmark = pytest.mark.anyio


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

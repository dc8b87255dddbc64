"""The model registry's names, versions and models:/ URIs, over a real store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cnai.core.errors import BadRequest, Invalid, NotFound
from cnai.core.kernel import register_kernel
from cnai.core.kinds import Namespace
from cnai.core.registry import Registry
from cnai.core.resources import ResourceService
from cnai.core.store.sqlite import SQLiteStore
from cnai.tracking import registry
from cnai.tracking.api import Model

pytestmark = pytest.mark.anyio


class _Platform:
    def __init__(self) -> None:
        self.registry = Registry()
        register_kernel(self.registry)


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[ResourceService]:
    import cnai.tracking

    platform = _Platform()
    cnai.tracking.register(platform)
    store = SQLiteStore(tmp_path / "state.db")
    svc = ResourceService(platform.registry, store)
    await svc.create("namespaces", Namespace.new("ml").to_dict())
    yield svc
    await store.close()


@pytest.mark.parametrize(
    ("display", "expected"),
    [
        pytest.param("iris", "iris", id="a-valid-name-is-kept"),
        pytest.param("Fraud Detector", "fraud-detector-", id="spaces-and-capitals"),
        pytest.param("!!!", "model-", id="nothing-usable"),
        pytest.param("x" * 80, "x" * 41 + "-", id="too-long"),
    ],
)
def test_resource_names_of_mlflow_names(display: str, expected: str) -> None:
    name = registry.resource_name(display)
    assert name.startswith(expected)
    assert len(name) <= 50
    assert registry.resource_name(display) == name  # stable


async def _model(service: ResourceService, name: str, **spec: object) -> Model:
    body = {"apiVersion": "cnai.io/v1alpha1", "kind": "Model", "metadata": {"name": name}}
    body["spec"] = dict(spec)
    return Model.model_validate(await service.create("models", body, "ml"))


async def test_versions_are_numbered_and_uris_resolve(service: ResourceService) -> None:
    model = await _model(service, "iris", displayName="Iris Classifier")
    one = await registry.create_version(service, "ml", model, {"source": "file:///a"})
    model = await registry.find_model(service, "ml", "Iris Classifier")
    two = await registry.create_version(service, "ml", model, {"source": "file:///b"})
    assert (one.metadata.name, two.metadata.name) == ("iris-v1", "iris-v2")
    model = await registry.find_model(service, "ml", "iris")
    assert model.status.latest_version == 2
    model.spec.aliases["champion"] = 1
    await service.update("models", model.to_dict(), "ml", "iris")

    async def source(uri: str) -> str:
        return (await registry.resolve(service, "ml", uri)).spec.source

    assert await source("models:/iris/2") == "file:///b"
    assert await source("models:/iris@champion") == "file:///a"
    assert await source("models:/iris/latest") == "file:///b"
    assert await source("models:/Iris Classifier/1") == "file:///a"
    with pytest.raises(NotFound, match="has no alias 'prod'"):
        await source("models:/iris@prod")
    with pytest.raises(NotFound, match="has no version 9"):
        await source("models:/iris/9")
    with pytest.raises(NotFound, match="registered model 'nope' not found"):
        await source("models:/nope/1")
    with pytest.raises(BadRequest, match="must be models:/NAME/VERSION"):
        await source("runs:/abc/model")


async def test_a_version_is_immutable_and_named_after_its_number(
    service: ResourceService,
) -> None:
    model = await _model(service, "iris")
    version = await registry.create_version(service, "ml", model, {"source": "file:///a"})
    changed = version.to_dict()
    changed["spec"]["source"] = "file:///elsewhere"
    with pytest.raises(Invalid, match=r"spec.source: is immutable"):
        await service.update("modelversions", changed, "ml", "iris-v1")
    changed = version.to_dict()
    changed["spec"]["description"] = "better docs"  # description and tags may change
    await service.update("modelversions", changed, "ml", "iris-v1")
    wrong = {
        "apiVersion": "cnai.io/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {"name": "iris-v7"},
        "spec": {"model": "iris", "version": 2, "source": "file:///c"},
    }
    with pytest.raises(Invalid, match=r"metadata.name: must be iris-v2"):
        await service.create("modelversions", wrong, "ml")
    with pytest.raises(Invalid, match=r"spec.aliases\[v2\]"):
        await _model(service, "other", aliases={"v2": 1})

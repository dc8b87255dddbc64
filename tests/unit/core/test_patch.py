"""JSON merge patch: the examples of RFC 7386, Appendix A."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from cnai.core.patch import merge_patch


@pytest.mark.parametrize(
    ("target", "patch", "result"),
    [
        pytest.param({"a": "b"}, {"a": "c"}, {"a": "c"}, id="replace-value"),
        pytest.param({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}, id="add-key"),
        pytest.param({"a": "b"}, {"a": None}, {}, id="null-removes-key"),
        pytest.param({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}, id="null-removes-only-it"),
        pytest.param({"a": ["b"]}, {"a": "c"}, {"a": "c"}, id="scalar-replaces-array"),
        pytest.param({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}, id="array-replaces-scalar"),
        pytest.param(
            {"a": {"b": "c"}},
            {"a": {"b": "d", "c": None}},
            {"a": {"b": "d"}},
            id="nested-objects-merge",
        ),
        pytest.param({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}, id="arrays-are-replaced"),
        pytest.param(["a", "b"], ["c", "d"], ["c", "d"], id="array-target-replaced"),
        pytest.param({"a": "b"}, ["c"], ["c"], id="array-patch-replaces-object"),
        pytest.param({"a": "foo"}, None, None, id="null-patch-replaces-everything"),
        pytest.param({"a": "foo"}, "bar", "bar", id="scalar-patch-replaces-everything"),
        pytest.param({"e": None}, {"a": 1}, {"e": None, "a": 1}, id="existing-null-kept"),
        pytest.param([1, 2], {"a": "b", "c": None}, {"a": "b"}, id="object-patch-on-array"),
        pytest.param({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}, id="deep-null-on-empty"),
    ],
)
def test_rfc7386_examples(target: Any, patch: Any, result: Any) -> None:
    assert merge_patch(target, patch) == result


def test_patch_does_not_mutate_its_inputs() -> None:
    target = {"spec": {"replicas": 1, "template": {"image": "a"}}, "keep": [1]}
    patch = {"spec": {"template": {"image": "b"}, "replicas": None}, "new": [{"x": 1}]}
    target_before, patch_before = copy.deepcopy(target), copy.deepcopy(patch)
    out = merge_patch(target, patch)
    assert out == {"spec": {"template": {"image": "b"}}, "keep": [1], "new": [{"x": 1}]}
    assert (target, patch) == (target_before, patch_before)
    out["new"][0]["x"] = 2  # the result does not share the patch's containers
    assert patch["new"] == [{"x": 1}]

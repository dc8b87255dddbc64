"""Workload validation of a resize: count and minCount may change, never count below
minCount, and the requests never."""

from __future__ import annotations

from typing import Any

import pytest

from cnai.core.errors import Invalid
from cnai.core.registry import Registry

from .test_api import admit, registry, workload  # noqa: F401

GPU = {"requests": {"gpu": 1}}


@pytest.mark.parametrize(
    ("new", "cause"),
    [
        pytest.param(
            {"count": 1, "minCount": 2, **GPU},
            ("spec.podSets[0].minCount", "must be between 1 and count (1)"),
            id="count-lowered-below-min-count",
        ),
        pytest.param(
            {"count": 4, "minCount": 0, **GPU},
            ("spec.podSets[0].minCount", "must be between 1 and count (4)"),
            id="min-count-zero",
        ),
        pytest.param(
            {"count": 4, "minCount": 2, "requests": {"gpu": 2}},
            ("spec.podSets", "only count and minCount may change (resize)"),
            id="requests-fixed",
        ),
    ],
)
def test_a_resize_below_min_count_or_of_the_requests_is_rejected(
    registry: Registry,  # noqa: F811
    new: dict[str, Any],
    cause: tuple[str, str],
) -> None:
    stored = admit(registry, workload({"count": 4, "minCount": 2, **GPU}))
    with pytest.raises(Invalid) as caught:
        admit(registry, workload(new), stored)
    assert [(c.field, c.message) for c in caught.value.causes] == [cause]


def test_a_workload_may_shrink_to_its_min_count(registry: Registry) -> None:  # noqa: F811
    stored = admit(registry, workload({"count": 4, "minCount": 2, **GPU}))
    shrunk = admit(registry, workload({"count": 2, "minCount": 2, **GPU}), stored)
    assert shrunk["spec"]["podSets"][0]["count"] == 2

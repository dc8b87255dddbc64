"""`cnai delete --cascade`: kubectl's values map onto the API's propagation policies."""

from __future__ import annotations

import pytest

from cnai.cli.delete import Cascade, deleted_message
from cnai.core.store.protocol import PropagationPolicy


@pytest.mark.parametrize(
    ("cascade", "policy"),
    [
        pytest.param(Cascade.BACKGROUND, PropagationPolicy.BACKGROUND, id="background"),
        pytest.param(Cascade.FOREGROUND, PropagationPolicy.FOREGROUND, id="foreground"),
        pytest.param(Cascade.ORPHAN, PropagationPolicy.ORPHAN, id="orphan"),
    ],
)
def test_cascade_names_a_propagation_policy(cascade: Cascade, policy: PropagationPolicy) -> None:
    assert cascade.policy is policy


def test_an_owner_held_by_the_collectors_finalizer_is_marked_for_deletion() -> None:
    obj = {
        "kind": "Secret",
        "metadata": {
            "name": "owner",
            "deletionTimestamp": "2024-01-02T03:04:05Z",
            "finalizers": ["foregroundDeletion"],
        },
    }
    assert deleted_message(obj) == 'secret "owner" marked for deletion'

"""The human-readable layout of `cnai describe`."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cnai.cli.describe import describe_lines, event_lines, title

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        pytest.param("spec", "Spec", id="one-word"),
        pytest.param("involvedObject", "Involved Object", id="camel-case-split"),
        pytest.param("lastTimestamp", "Last Timestamp", id="two-words"),
    ],
)
def test_titles(key: str, expected: str) -> None:
    assert title(key) == expected


def test_metadata_then_fields_then_status() -> None:
    obj = {
        "apiVersion": "cnai.io/v1alpha1",
        "kind": "TrainJob",
        "metadata": {
            "name": "j",
            "namespace": "ml",
            "uid": "u-1",
            "labels": {"b": "2", "a": "1"},
            "creationTimestamp": "2025-06-01T11:55:00Z",
            "finalizers": ["cnai.io/x"],
            "deletionTimestamp": "2025-06-01T11:59:00Z",
        },
        "spec": {"workers": 2},
        "status": {"phase": "Running"},
    }
    lines = describe_lines(obj, NOW)
    assert lines[:8] == [
        "Name:         j",
        "Namespace:    ml",
        "Labels:       a=1",
        "              b=2",
        "Annotations:  <none>",
        "UID:          u-1",
        "Created:      2025-06-01T11:55:00Z (5m ago)",
        "Finalizers:   cnai.io/x",
    ]
    assert "Deletion:     requested at 2025-06-01T11:59:00Z" in lines
    assert lines[-4:] == ["Spec:", "  workers: 2", "Status:", "  phase: Running"]


def test_events_table_and_none() -> None:
    assert event_lines([], NOW) == ["", "Events:       <none>"]
    events = [
        {
            "type": "Warning",
            "reason": "BackOff",
            "message": "restarting",
            "count": 3,
            "firstTimestamp": "2025-06-01T11:50:00Z",
            "lastTimestamp": "2025-06-01T11:59:30Z",
            "source": {"component": "kubelet"},
        }
    ]
    assert event_lines(events, NOW) == [
        "",
        "Events:",
        "  TYPE      REASON    AGE                 FROM      MESSAGE",
        "  Warning   BackOff   30s (x3 over 10m)   kubelet   restarting",
    ]

"""Watch over real HTTP: ordered events from a resourceVersion, filters, timeouts, 410.

A watch is read until a sentinel object's event arrives, so "exactly these events"
needs no sleeps: everything written before the sentinel has arrived by then.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from harness import RunningPlatform, start_platform, unique

from cnai import Client
from cnai.core.client import WatchEvent
from cnai.core.errors import Gone
from cnai.core.kinds import Namespace, Secret

API = "/apis/cnai.io/v1alpha1"
END = "zz-end"  # the sentinel each test writes last
WATCH_BOUND_S = 15  # a safety bound on every watch; tests end on the sentinel well before


def labelled(name: str, ns: str, **labels: str) -> Secret:
    s = Secret.new(name, ns)
    s.metadata.labels = dict(labels)
    return s


def read_until(
    events: Iterator[WatchEvent[Secret]],
    end: str = END,
    on_first: Callable[[], None] | None = None,
) -> list[WatchEvent[Secret]]:
    """Events up to and including the ADDED of the sentinel ``end``; closes the stream."""
    seen: list[WatchEvent[Secret]] = []
    try:
        for ev in events:
            seen.append(ev)
            if len(seen) == 1 and on_first is not None:
                on_first()
            if (ev.type, ev.object.metadata.name) == ("ADDED", end):
                break
    finally:
        events.close()  # type: ignore[attr-defined]
    assert pairs(seen[-1:]) == [("ADDED", end)], f"the watch ended early: {pairs(seen)}"
    rvs = [int(ev.object.metadata.resource_version or 0) for ev in seen]
    assert rvs == sorted(set(rvs)), f"resourceVersions out of order: {rvs}"
    return seen


def pairs(events: list[WatchEvent[Secret]]) -> list[tuple[str, str]]:
    return [(ev.type, ev.object.metadata.name) for ev in events]


def read_until_end(
    events: Iterator[WatchEvent[Secret]], on_first: Callable[[], None] | None = None
) -> list[tuple[str, str]]:
    """(type, name) of each event up to and including the sentinel's ADDED."""
    return pairs(read_until(events, END, on_first))


def test_watch_from_a_list_sees_exactly_the_later_changes_in_order(
    client: Client, namespace: str
) -> None:
    client.create(Secret.new("a", namespace))
    listed = client.list(Secret, namespace)
    client.create(Secret.new("b", namespace))  # replayed from history

    def live_changes() -> None:  # made while the watch is open
        b = client.get(Secret, "b", namespace)
        b.metadata.labels = {"v": "2"}
        client.update(b)
        client.delete(Secret, "a", namespace)
        client.create(Secret.new(END, namespace))

    events = client.watch(
        Secret, namespace, resource_version=listed.resource_version, timeout_seconds=WATCH_BOUND_S
    )
    assert read_until_end(events, live_changes) == [
        ("ADDED", "b"),
        ("MODIFIED", "b"),
        ("DELETED", "a"),
        ("ADDED", END),
    ]


def test_watch_resumes_after_a_mid_stream_resource_version(client: Client, namespace: str) -> None:
    start = client.list(Secret, namespace).resource_version
    for name in ("one", "two", "three"):
        client.create(Secret.new(name, namespace))
    client.delete(Secret, "one", namespace)
    client.create(Secret.new(END, namespace))
    everything = read_until(
        client.watch(Secret, namespace, resource_version=start, timeout_seconds=WATCH_BOUND_S)
    )
    assert pairs(everything) == [
        ("ADDED", "one"),
        ("ADDED", "two"),
        ("ADDED", "three"),
        ("DELETED", "one"),
        ("ADDED", END),
    ]
    middle = everything[1].object.metadata.resource_version
    resumed = client.watch(
        Secret, namespace, resource_version=middle, timeout_seconds=WATCH_BOUND_S
    )
    assert read_until_end(resumed) == [("ADDED", "three"), ("DELETED", "one"), ("ADDED", END)]


def test_watch_without_a_version_starts_with_the_current_objects(
    client: Client, namespace: str
) -> None:
    client.create(Secret.new("old", namespace))
    client.create(Secret.new("gone", namespace))
    client.delete(Secret, "gone", namespace)

    def later() -> None:
        client.create(Secret.new(END, namespace))

    events = client.watch(Secret, namespace, timeout_seconds=WATCH_BOUND_S)
    assert read_until_end(events, later) == [("ADDED", "old"), ("ADDED", END)]


def test_label_selector_filters_the_watch(client: Client, namespace: str) -> None:
    rv = client.list(Secret, namespace).resource_version
    client.create(labelled("web-1", namespace, app="web"))
    client.create(labelled("db-1", namespace, app="db"))
    client.create(Secret.new("plain", namespace))
    db = client.get(Secret, "db-1", namespace)
    db.metadata.labels = {"app": "web"}
    client.update(db)  # now matches
    client.create(labelled(END, namespace, app="web"))
    events = client.watch(
        Secret,
        namespace,
        resource_version=rv,
        label_selector="app=web",
        timeout_seconds=WATCH_BOUND_S,
    )
    assert read_until_end(events) == [
        ("ADDED", "web-1"),
        ("MODIFIED", "db-1"),
        ("ADDED", END),
    ]
    client.create(Secret.new("zz-unlabelled-end", namespace))
    notin = client.watch(
        Secret, namespace, label_selector="app notin (web)", timeout_seconds=WATCH_BOUND_S
    )
    assert pairs(read_until(notin, "zz-unlabelled-end")) == [
        ("ADDED", "plain"),
        ("ADDED", "zz-unlabelled-end"),
    ]


def test_namespace_filters_the_watch_and_all_namespaces_sees_both(client: Client) -> None:
    here, there = unique("watch-here"), unique("watch-there")
    for ns in (here, there):
        client.create(Namespace.new(ns))
    mark = unique("run")  # isolates this test's objects in the all-namespaces watch
    rv = client.list(Secret, here).resource_version
    client.create(labelled("x", there, run=mark))
    client.create(labelled("y", here, run=mark))
    client.create(labelled("z", there, run=mark))
    client.create(labelled(END, here, run=mark))
    scoped = client.watch(Secret, here, resource_version=rv, timeout_seconds=WATCH_BOUND_S)
    assert read_until_end(scoped) == [("ADDED", "y"), ("ADDED", END)]
    everywhere = client.watch(
        Secret,
        all_namespaces=True,
        resource_version=rv,
        label_selector=f"run={mark}",
        timeout_seconds=WATCH_BOUND_S,
    )
    assert read_until_end(everywhere) == [
        ("ADDED", "x"),
        ("ADDED", "y"),
        ("ADDED", "z"),
        ("ADDED", END),
    ]


def test_field_selector_filters_the_watch(client: Client, namespace: str) -> None:
    rv = client.list(Secret, namespace).resource_version
    client.create(Secret.new("other", namespace))
    client.create(Secret.new(END, namespace))
    events = client.watch(
        Secret,
        namespace,
        resource_version=rv,
        field_selector=f"metadata.name={END}",
        timeout_seconds=WATCH_BOUND_S,
    )
    assert read_until_end(events) == [("ADDED", END)]


def test_timeout_seconds_ends_the_stream(
    client: Client, http: httpx.Client, namespace: str
) -> None:
    rv = client.list(Secret, namespace).resource_version
    assert list(client.watch(Secret, namespace, resource_version=rv, timeout_seconds=0.2)) == []
    resp = http.get(
        f"{API}/namespaces/{namespace}/secrets",
        params={"watch": "true", "resourceVersion": rv, "timeoutSeconds": "0.2"},
    )
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/x-ndjson")
    assert resp.content == b""


def test_a_resource_version_from_the_future_is_not_an_error(
    http: httpx.Client, namespace: str
) -> None:
    for version in ("999999", str(10**30)):
        resp = http.get(
            f"{API}/namespaces/{namespace}/secrets",
            params={"watch": "true", "resourceVersion": version, "timeoutSeconds": "0"},
        )
        assert resp.status_code == 200, resp.text


def test_watch_event_lines_are_ndjson_with_type_and_object(
    client: Client, http: httpx.Client, namespace: str
) -> None:
    rv = client.list(Secret, namespace).resource_version
    client.create(Secret.new("raw", namespace, string_data={"k": "v"}))
    with http.stream(
        "GET",
        f"{API}/namespaces/{namespace}/secrets",
        params={"watch": "1", "resourceVersion": rv, "timeoutSeconds": str(WATCH_BOUND_S)},
    ) as resp:
        line = next(resp.iter_lines())
    event = httpx.Response(200, content=line).json()
    assert event["type"] == "ADDED"
    assert event["object"]["metadata"]["name"] == "raw"
    assert "stringData" not in event["object"]


# -- 410 Gone needs a platform with a short history ------------------------------------------

HISTORY = 5
COMPACT_EVERY = 1000  # the store trims its history every this many writes


@pytest.fixture(scope="module")
def short_history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    home: Path = tmp_path_factory.mktemp("cnai-short-history")
    running = start_platform(home, extra_args=["--watch-history", str(HISTORY)])
    yield running
    running.stop()


def test_watch_from_a_compacted_version_is_410_gone(short_history: RunningPlatform) -> None:
    with short_history.client() as client:
        first = client.create(Secret.new("first", "default"))
        old = first.metadata.resource_version
        assert old
        headers = {"Authorization": f"Bearer {short_history.admin_token()}"}
        with httpx.Client(base_url=short_history.url, headers=headers) as http:
            body = Secret.new("x", "default").to_dict()
            for i in range(COMPACT_EVERY):
                body["metadata"]["name"] = f"filler-{i}"
                assert http.post(f"{API}/namespaces/default/secrets", json=body).is_success
            resp = http.get(
                f"{API}/namespaces/default/secrets",
                params={"watch": "true", "resourceVersion": old},
            )
        assert resp.status_code == 410
        assert resp.json()["reason"] == "Expired"
        assert "list again" in resp.json()["message"]
        with pytest.raises(Gone):
            list(client.watch(Secret, "default", resource_version=old, timeout_seconds=5))
        # The recovery the message asks for works: list, then watch from the list's version.
        listed = client.list(Secret, "default")
        assert len(listed.items) == COMPACT_EVERY + 1
        client.create(Secret.new(END, "default"))
        resumed = client.watch(
            Secret, "default", resource_version=listed.resource_version, timeout_seconds=5
        )
        assert read_until_end(resumed) == [("ADDED", END)]

"""The in-process watch fan-out: who gets which event, and slow watchers being cut off."""

from __future__ import annotations

from typing import Any

import pytest

from cnai.core.selectors import FieldSelector, LabelSelector
from cnai.core.store.protocol import WatchEvent, WatchEventType
from cnai.core.store.watch import Broadcaster, Subscriber

from ..builders import make_namespace, make_widget


def added(obj: dict[str, Any], resource: str = "widgets", rv: int = 1) -> WatchEvent:
    return WatchEvent(WatchEventType.ADDED, obj, resource, rv)


def drain(sub: Subscriber) -> list[WatchEvent]:
    out = []
    while not sub.queue.empty():
        out.append(sub.queue.get_nowait())
    return out


WEB = make_widget("web", "team-a").labels(app="web").build()


@pytest.mark.parametrize(
    ("resource", "namespace", "labels", "fields", "event", "wanted"),
    [
        pytest.param("widgets", None, None, None, added(WEB), True, id="all-of-a-resource"),
        pytest.param("gadgets", None, None, None, added(WEB), False, id="other-resource"),
        pytest.param("widgets", "team-a", None, None, added(WEB), True, id="same-namespace"),
        pytest.param("widgets", "team-b", None, None, added(WEB), False, id="other-namespace"),
        pytest.param(
            "namespaces",
            "team-a",
            None,
            None,
            added(make_namespace("team-a").build(), "namespaces"),
            False,
            id="cluster-scoped-object-is-in-no-namespace",
        ),
        pytest.param("widgets", None, "app=web", None, added(WEB), True, id="label-matches"),
        pytest.param("widgets", None, "app=db", None, added(WEB), False, id="label-mismatch"),
        pytest.param(
            "widgets", None, None, "metadata.name=web", added(WEB), True, id="field-matches"
        ),
        pytest.param(
            "widgets", None, None, "metadata.name=db", added(WEB), False, id="field-mismatch"
        ),
    ],
)
def test_subscriber_wants(
    resource: str,
    namespace: str | None,
    labels: str | None,
    fields: str | None,
    event: WatchEvent,
    wanted: bool,
) -> None:
    sub = Subscriber(
        resource,
        namespace,
        LabelSelector.parse(labels) if labels else None,
        FieldSelector.parse(fields) if fields else None,
    )
    assert sub.wants(event) is wanted


def test_publish_delivers_only_to_matching_subscribers() -> None:
    b = Broadcaster()
    team_a = b.subscribe("widgets", "team-a", None, None)
    team_b = b.subscribe("widgets", "team-b", None, None)
    b.publish(added(WEB))
    assert [e.object["metadata"]["name"] for e in drain(team_a)] == ["web"]
    assert drain(team_b) == []


def test_publish_reaches_only_the_watches_of_the_events_resource() -> None:
    b = Broadcaster()
    widgets = b.subscribe("widgets", None, None, None)
    labelled = b.subscribe("widgets", None, LabelSelector.parse("app=db"), None)
    gadgets = b.subscribe("gadgets", None, None, None)
    b.publish(added(WEB))
    b.publish(added(make_widget("g").build(), "gadgets", rv=2))
    assert [e.object["metadata"]["name"] for e in drain(widgets)] == ["web"]
    assert drain(labelled) == []  # a selector still filters within the resource
    assert [e.object["metadata"]["name"] for e in drain(gadgets)] == ["g"]


def test_subscribers_lists_every_open_watch_until_each_unsubscribes() -> None:
    b = Broadcaster()
    subs = [b.subscribe("widgets", None, None, None), b.subscribe("gadgets", "team-a", None, None)]
    assert b.subscribers == set(subs)
    b.unsubscribe(subs[0])
    b.unsubscribe(subs[0])  # twice is harmless
    assert b.subscribers == {subs[1]}
    b.unsubscribe(subs[1])
    assert b.subscribers == set()
    b.publish(added(WEB))
    assert drain(subs[0]) == []


def test_slow_subscriber_gets_one_error_and_nothing_after() -> None:
    b = Broadcaster(max_queue=2)
    slow = b.subscribe("widgets", None, None, None)
    for rv in range(1, 6):
        b.publish(added(make_widget(f"w{rv}").build(), rv=rv))
    events = drain(slow)
    assert [e.type for e in events] == [
        WatchEventType.ADDED,
        WatchEventType.ADDED,
        WatchEventType.ERROR,
    ]
    assert events[-1].object["code"] == 410
    assert events[-1].object["reason"] == "Expired"
    b.publish(added(make_widget("late").build(), rv=9))
    assert drain(slow) == []


def test_unsubscribed_watcher_gets_nothing() -> None:
    b = Broadcaster()
    sub = b.subscribe("widgets", None, None, None)
    b.unsubscribe(sub)
    b.publish(added(WEB))
    assert drain(sub) == []


def test_close_all_ends_every_watch_with_a_bookmark() -> None:
    b = Broadcaster()
    subs = [b.subscribe("widgets", None, None, None), b.subscribe("gadgets", None, None, None)]
    b.close_all()
    assert b.subscribers == set()
    for sub in subs:
        assert [e.type for e in drain(sub)] == [WatchEventType.BOOKMARK]

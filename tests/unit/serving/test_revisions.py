"""Revisions and traffic: what makes a revision, who gets the requests, and draining."""

from __future__ import annotations

import collections
import random

import pytest

from cnai.serving.revisions import (
    Picker,
    Revision,
    draining,
    revision_name,
    template_hash,
    traffic,
)


def test_the_hash_follows_what_a_replica_runs_not_key_order() -> None:
    a = {"predictor": {"model": "models:/m/1", "format": "sklearn"}, "batching": {"n": 1}}
    b = {"batching": {"n": 1}, "predictor": {"format": "sklearn", "model": "models:/m/1"}}
    assert template_hash(a) == template_hash(b)
    changed = {**a, "predictor": {"model": "models:/m/2", "format": "sklearn"}}
    assert template_hash(changed) != template_hash(a)


def test_revision_names_are_padded_and_fit_63_characters() -> None:
    assert revision_name("digits", 3) == "digits-00003"
    long = revision_name("x" * 70, 12)
    assert len(long) == 63
    assert long.endswith("-00012")


R1, R2, R3 = "svc-00001", "svc-00002", "svc-00003"


@pytest.mark.parametrize(
    ("revisions", "canary", "expected"),
    [
        pytest.param([], None, {}, id="no-revision"),
        pytest.param([(R1, False)], None, {R1: 100}, id="first-not-ready-waits-for-it"),
        pytest.param([(R1, True)], None, {R1: 100}, id="first-ready"),
        pytest.param([(R1, True)], 10, {R1: 100}, id="canary-without-a-previous"),
        pytest.param([(R1, True), (R2, False)], None, {R1: 100}, id="previous-until-ready"),
        pytest.param([(R1, True), (R2, True)], None, {R2: 100}, id="latest-takes-all"),
        pytest.param([(R1, True), (R2, True)], 10, {R2: 10, R1: 90}, id="canary-split"),
        pytest.param([(R1, True), (R2, False)], 10, {R1: 100}, id="canary-not-ready-yet"),
        pytest.param([(R1, True), (R2, True)], 0, {R1: 100}, id="rollback"),
        pytest.param([(R1, True), (R2, True)], 100, {R2: 100}, id="canary-at-100"),
        pytest.param(
            [(R1, True), (R2, False), (R3, True)], 20, {R3: 20, R1: 80}, id="skips-unready"
        ),
        pytest.param([(R1, False), (R2, False)], 50, {R2: 100}, id="none-ready-latest-waits"),
    ],
)
def test_traffic(
    revisions: list[tuple[str, bool]], canary: int | None, expected: dict[str, int]
) -> None:
    shares = traffic([Revision(n, ready) for n, ready in revisions], canary)
    assert shares == expected
    if revisions:
        assert sum(shares.values()) == 100


def test_a_revision_without_traffic_drains_until_nothing_is_in_flight() -> None:
    busy, done = draining([R1, R2, R3], {R3: 100}, {R1: 2, R2: 0, R3: 5})
    assert (busy, done) == ([R1], [R2])


def test_revisions_are_drawn_by_their_share() -> None:
    picker = Picker(random.Random(7))
    drawn = collections.Counter(picker.revision({R1: 90, R2: 10}) for _ in range(10_000))
    assert set(drawn) == {R1, R2}
    assert 800 < drawn[R2] < 1200  # 10% of 10,000, within a wide margin
    assert picker.revision({R1: 0}) is None
    assert picker.revision({}) is None


def test_the_replica_with_the_fewest_requests_in_flight_is_chosen() -> None:
    picker = Picker()
    assert picker.replica({"a": 3, "b": 1, "c": 2}) == "b"
    assert picker.replica({}) is None


def test_tied_replicas_are_taken_in_turn() -> None:
    picker = Picker()
    chosen = [picker.replica({"a": 0, "b": 0, "c": 0}) for _ in range(6)]
    assert collections.Counter(chosen) == {"a": 2, "b": 2, "c": 2}

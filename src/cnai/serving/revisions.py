"""Revisions and traffic: which revision a spec change makes, and who gets the requests.

Pure functions over plain values, called by the InferenceService controller (which
stores the result in status) and by the gateway (which routes by it).

- :func:`template_hash` names what a replica runs (the predictor and batching): a change
  to it makes a new revision ``NAME-00001``, ``NAME-00002``...; a change to anything
  else (replicas, scaling, canaryTrafficPercent) does not.
- :func:`traffic` splits the requests between the latest revision and the one before it,
  as KServe does: without ``canaryTrafficPercent`` the latest takes everything once it
  is ready (until then the previous ready one keeps serving); with it, the latest takes
  that share and the previous one the rest; ``canaryTrafficPercent: 0`` is a rollback
  (everything to the previous one), and removing the field promotes the latest. A
  revision that lost its traffic drains: it keeps its replicas until no request is in
  flight on them, then it scales to zero.
- :class:`Picker` chooses a revision by weight and, within it, the ready replica with
  the fewest requests in flight (least outstanding requests), ties going round-robin.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

REVISION_DIGITS = 5


def template_hash(template: Mapping[str, Any]) -> str:
    """A short stable hash of what a replica runs (its JSON, keys sorted)."""
    text = json.dumps(template, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def revision_name(service: str, number: int) -> str:
    """``SERVICE-00001``: the revision's number padded, the service's name cut to fit 63."""
    suffix = f"-{number:0{REVISION_DIGITS}d}"
    return service[: 63 - len(suffix)].rstrip("-") + suffix


@dataclass(frozen=True)
class Revision:
    """What :func:`traffic` needs of a revision."""

    name: str
    ready: bool  # at least one replica answers


def traffic(revisions: Sequence[Revision], canary_percent: int | None) -> dict[str, int]:
    """Percent of the requests per revision (oldest first in ``revisions``; the last is
    the latest). Shares sum to 100 whenever there is a revision. Only the latest and the
    newest ready one before it get traffic."""
    if not revisions:
        return {}
    latest = revisions[-1]
    previous = next((r for r in reversed(revisions[:-1]) if r.ready), None)
    if previous is None:
        return {latest.name: 100}  # nothing else can serve: requests wait for it
    if canary_percent is None:
        return {latest.name: 100} if latest.ready else {previous.name: 100}
    if not latest.ready or canary_percent == 0:
        return {previous.name: 100}
    if canary_percent == 100:
        return {latest.name: 100}
    return {latest.name: canary_percent, previous.name: 100 - canary_percent}


def draining(
    revisions: Sequence[str], shares: Mapping[str, int], in_flight: Mapping[str, int]
) -> tuple[list[str], list[str]]:
    """(revisions that still drain, revisions done) among those without traffic: one
    drains while requests are in flight on it."""
    idle = [r for r in revisions if shares.get(r, 0) == 0]
    busy = [r for r in idle if in_flight.get(r, 0) > 0]
    return busy, [r for r in idle if r not in busy]


class Picker:
    """Where the gateway sends a request: a revision by its share, then its ready
    replica with the fewest requests in flight."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()
        self._turn = 0

    def revision(self, shares: Mapping[str, int]) -> str | None:
        """A revision drawn by its share of the traffic; None if none has a share."""
        weighted = [(name, share) for name, share in shares.items() if share > 0]
        if not weighted:
            return None
        point = self._rng.uniform(0, sum(share for _, share in weighted))
        for name, share in weighted:
            point -= share
            if point < 0:
                return name
        return weighted[-1][0]

    def replica(self, in_flight: Mapping[str, int]) -> str | None:
        """The replica (of the ready ones given, with their requests in flight) that has
        the fewest requests in flight; ties taken in turn. None if there is none."""
        if not in_flight:
            return None
        least = min(in_flight.values())
        tied = sorted(name for name, n in in_flight.items() if n == least)
        self._turn += 1
        return tied[self._turn % len(tied)]

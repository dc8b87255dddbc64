"""Capped exponential backoff: the delay before retrying something that failed.

Two shapes share one formula: :class:`Backoff` is one sequence (an informer's re-list
after errors) and :class:`RateLimiter` keeps a sequence per key (a work queue's retries
of one failing object, client-go's ``ItemExponentialFailureRateLimiter``).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)

# 2**64 times any sane base is far past any cap; stopping there keeps the float finite.
_MAX_EXPONENT = 64


def exponential(base: float, cap: float, failures: int) -> float:
    """``base * 2**failures``, never more than ``cap``."""
    return min(cap, base * 2.0 ** min(failures, _MAX_EXPONENT))


class Backoff:
    """One growing delay: ``next()`` returns base, 2*base, 4*base ... up to cap."""

    def __init__(self, base: float = 0.05, cap: float = 30.0) -> None:
        if base <= 0 or cap < base:
            raise ValueError(f"backoff needs 0 < base <= cap, got base={base} cap={cap}")
        self.base = base
        self.cap = cap
        self.failures = 0

    def next(self) -> float:
        delay = exponential(self.base, self.cap, self.failures)
        self.failures += 1
        return delay

    def reset(self) -> None:
        self.failures = 0


class RateLimiter(Generic[K]):
    """A per-key backoff: each key's delay doubles with each failure until forgotten."""

    def __init__(self, base: float = 0.005, cap: float = 60.0) -> None:
        if base <= 0 or cap < base:
            raise ValueError(f"rate limiter needs 0 < base <= cap, got base={base} cap={cap}")
        self.base = base
        self.cap = cap
        self._failures: dict[K, int] = {}

    def when(self, key: K) -> float:
        """The delay before ``key``'s next try; counts one more failure."""
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        return exponential(self.base, self.cap, failures)

    def num_requeues(self, key: K) -> int:
        return self._failures.get(key, 0)

    def forget(self, key: K) -> None:
        """``key`` succeeded: its next failure starts again from ``base``."""
        self._failures.pop(key, None)

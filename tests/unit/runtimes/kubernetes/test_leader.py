"""Lease leader election against a Kubernetes-API-shaped server.

Single steps (``try_acquire_or_renew``) run on a fake clock that the test moves, so
expiry is exact and nothing sleeps; ``run`` is tested once end to end with durations of
a fraction of a second.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import anyio
import pytest
from kubeapi import KubeApiServer

from cnai.core.clock import FakeClock
from cnai.core.errors import Conflict
from cnai.runtimes.kubernetes.api import ApiResource, KubeApi
from cnai.runtimes.kubernetes.leader import LEASES, LeaderElector, LeadershipLost

pytestmark = pytest.mark.anyio

NS, NAME = "cnai-system", "cnai-controller-manager"
MICRO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


class HookedApi(KubeApi):
    """A client that runs ``after_get`` once, between a read and the write that follows it."""

    after_get: Callable[[], Awaitable[object]] | None = None

    async def get(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        obj = await super().get(*args, **kwargs)
        if self.after_get is not None:
            hook, self.after_get = self.after_get, None
            await hook()
        return obj


@pytest.fixture
def server() -> Iterator[KubeApiServer]:
    srv = KubeApiServer([LEASES]).start()
    yield srv
    srv.stop()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def apis(server: KubeApiServer) -> AsyncIterator[list[HookedApi]]:
    clients = [HookedApi(server.url) for _ in range(3)]
    yield clients
    for c in clients:
        await c.close()


def lease(server: KubeApiServer) -> dict[str, Any]:
    obj = server.get_object(LEASES, NS, NAME)
    assert obj is not None
    spec: dict[str, Any] = obj["spec"]
    return spec


@pytest.fixture
def electors(apis: list[HookedApi], clock: FakeClock) -> tuple[LeaderElector, LeaderElector]:
    a = LeaderElector(apis[0], NS, NAME, "a", clock=clock)
    b = LeaderElector(apis[1], NS, NAME, "b", clock=clock)
    return a, b


async def test_of_two_candidates_only_one_leads(
    server: KubeApiServer, electors: tuple[LeaderElector, LeaderElector], clock: FakeClock
) -> None:
    a, b = electors
    assert await a.try_acquire_or_renew()
    for _ in range(20):  # a minute of a renewing every retry period
        clock.advance(3)
        assert await a.try_acquire_or_renew()
        assert not await b.try_acquire_or_renew()
    assert (a.is_leader, b.is_leader, b.holder) == (True, False, "a")
    spec = lease(server)
    assert spec["holderIdentity"] == "a"
    assert spec["leaseDurationSeconds"] == 15
    assert spec["leaseTransitions"] == 0
    assert MICRO_TIME.match(spec["renewTime"])
    assert spec["renewTime"] > spec["acquireTime"]


async def test_when_the_leader_stops_renewing_another_takes_over_after_the_lease_expires(
    server: KubeApiServer, electors: tuple[LeaderElector, LeaderElector], clock: FakeClock
) -> None:
    a, b = electors
    assert await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()  # b sees a's record now
    clock.advance(14.9)
    assert not await b.try_acquire_or_renew()
    clock.advance(0.2)
    assert await b.try_acquire_or_renew()
    spec = lease(server)
    assert (spec["holderIdentity"], spec["leaseTransitions"]) == ("b", 1)
    assert not await a.try_acquire_or_renew()  # a's renewal comes too late
    assert (a.is_leader, a.holder) == (False, "b")


async def test_expiry_is_timed_from_when_a_candidate_first_saw_the_record(
    electors: tuple[LeaderElector, LeaderElector], clock: FakeClock
) -> None:
    a, b = electors
    assert await a.try_acquire_or_renew()
    clock.advance(60)  # a is long silent, but b has never looked: it must wait a full lease
    assert not await b.try_acquire_or_renew()
    clock.advance(15.1)
    assert await b.try_acquire_or_renew()


async def test_release_hands_the_lease_over_at_once(
    server: KubeApiServer, electors: tuple[LeaderElector, LeaderElector]
) -> None:
    a, b = electors
    assert await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()
    assert await a.release()
    assert lease(server)["holderIdentity"] == ""
    assert not a.is_leader
    assert await b.try_acquire_or_renew()  # no clock movement needed
    assert not await a.release()  # not the holder: nothing to release


async def test_a_renewal_that_races_another_write_loses(
    server: KubeApiServer,
    apis: list[HookedApi],
    electors: tuple[LeaderElector, LeaderElector],
    clock: FakeClock,
) -> None:
    a, b = electors
    assert await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()
    clock.advance(16)
    # a reads its own lease; before a writes, b (whose view has expired) takes it over.
    apis[0].after_get = b.try_acquire_or_renew
    assert not await a.try_acquire_or_renew()
    assert lease(server)["holderIdentity"] == "b"
    assert b.is_leader
    assert not a.is_leader
    assert not await a.try_acquire_or_renew()
    assert a.holder == "b"


async def test_two_candidates_racing_for_an_expired_lease_elect_one(
    server: KubeApiServer,
    apis: list[HookedApi],
    clock: FakeClock,
) -> None:
    a = LeaderElector(apis[0], NS, NAME, "a", clock=clock)
    b = LeaderElector(apis[1], NS, NAME, "b", clock=clock)
    c = LeaderElector(apis[2], NS, NAME, "c", clock=clock)
    assert await c.try_acquire_or_renew()
    assert not await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()
    clock.advance(16)
    # Both read the expired lease before either writes.
    results: list[bool] = []

    async def b_attempt() -> None:
        results.append(await b.try_acquire_or_renew())

    apis[0].after_get = b_attempt
    results.append(await a.try_acquire_or_renew())
    assert sorted(results) == [False, True]
    assert [e.is_leader for e in (a, b)].count(True) == 1
    assert lease(server)["holderIdentity"] in ("a", "b")


async def test_durations_must_leave_room_to_renew(apis: list[HookedApi]) -> None:
    with pytest.raises(ValueError, match="lease_duration > renew_deadline > retry_period"):
        LeaderElector(apis[0], NS, NAME, "a", lease_duration=10, renew_deadline=10)


# -- run -------------------------------------------------------------------------------------


def fast(api: KubeApi, identity: str) -> LeaderElector:
    return LeaderElector(
        api, NS, NAME, identity, lease_duration=1.0, renew_deadline=0.5, retry_period=0.05
    )


async def test_run_leads_until_cancelled_then_a_standby_takes_over(
    apis: list[HookedApi],
) -> None:
    started: list[str] = []
    b_started = anyio.Event()

    def lead(who: str, event: anyio.Event | None = None) -> Callable[[], Awaitable[None]]:
        async def work() -> None:
            started.append(who)
            if event is not None:
                event.set()
            await asyncio.Event().wait()  # leads until cancelled

        return work

    a, b = fast(apis[0], "a"), fast(apis[1], "b")
    with anyio.fail_after(10):
        a_run = asyncio.create_task(a.run(lead("a")))
        while not started:
            await asyncio.sleep(0.01)
        b_run = asyncio.create_task(b.run(lead("b", b_started)))
        await asyncio.sleep(1.5)  # longer than a lease: a keeps renewing, b waits
        assert started == ["a"]
        a_run.cancel()  # a clean stop releases the lease
        await b_started.wait()
        assert started == ["a", "b"]
        b_run.cancel()
        for t in (a_run, b_run):
            with pytest.raises(asyncio.CancelledError):
                await t


async def overwrite_holder(api: KubeApi, holder: str) -> None:
    """Write the lease's holder, retrying when a renewal slips in between read and write."""
    for _ in range(50):
        current = await api.get(LEASES, NS, NAME)
        current["spec"]["holderIdentity"] = holder
        try:
            await api.replace(LEASES, current)
        except Conflict:
            continue
        return
    raise AssertionError("could not overwrite the lease in 50 tries")


async def test_run_stops_leading_when_another_holder_appears(
    server: KubeApiServer, apis: list[HookedApi]
) -> None:
    cancelled = anyio.Event()
    leading = anyio.Event()

    async def work() -> None:
        leading.set()
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    a = fast(apis[0], "a")
    with anyio.fail_after(10):
        a_run = asyncio.create_task(a.run(work))
        await leading.wait()
        # An intruder overwrites the lease (as a misconfigured second cluster would).
        await overwrite_holder(apis[2], "intruder")
        with pytest.raises(LeadershipLost, match="held by intruder"):
            await a_run
    assert cancelled.is_set()
    assert lease(server)["holderIdentity"] == "intruder"  # a's release did not clobber it


async def test_run_returns_and_releases_when_the_work_is_done(
    server: KubeApiServer, apis: list[HookedApi]
) -> None:
    async def work() -> None:
        await asyncio.sleep(0.2)  # spans a few renewals

    with anyio.fail_after(10):
        await fast(apis[0], "a").run(work)
    assert lease(server)["holderIdentity"] == ""


def test_lease_resource_is_coordination_v1() -> None:
    expected = ApiResource("coordination.k8s.io", "v1", "leases", "Lease", namespaced=True)
    assert expected == LEASES
    assert LEASES.path("ns", "x") == "/apis/coordination.k8s.io/v1/namespaces/ns/leases/x"

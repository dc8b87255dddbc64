"""Leader election over ``coordination.k8s.io/v1`` Leases, the way client-go does it.

When several replicas of cnai's controller manager run against one cluster, one of them
leads: it holds a Lease (``holderIdentity``) and renews it (``renewTime``) every retry
period. The others read it and take over only when it has not changed for
``leaseDurationSeconds`` as measured on their own clock from when they first saw it that
way; wall-clock times written by another machine are never compared with ours, so clock
skew cannot make two leaders. Every write carries the Lease's resourceVersion: of two
candidates racing for an expired lease, the apiserver accepts one and answers the other
409.

The leader gives up (and cancels its work) when it has not renewed for
``renew_deadline``, which is shorter than the lease duration, so it stops before anyone
else may start. On a clean stop it releases the lease (empty holder) and a standby takes
over at its next retry instead of waiting for expiry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
from collections.abc import Awaitable, Callable
from datetime import UTC
from typing import Any

from cnai.core.clock import Clock, RealClock
from cnai.core.errors import AlreadyExists, ApiError, Conflict, NotFound
from cnai.runtimes.kubernetes.api import ApiResource, KubeApi

log = logging.getLogger(__name__)

LEASES = ApiResource("coordination.k8s.io", "v1", "leases", "Lease", namespaced=True)
# client-go's defaults for controller managers.
LEASE_DURATION_S = 15.0
RENEW_DEADLINE_S = 10.0
RETRY_PERIOD_S = 2.0
# Candidates wait retry_period * (1 + up to this) between attempts, so they spread out.
JITTER = 1.2


class LeadershipLost(Exception):
    """The lease could not be renewed in time, or another candidate holds it now."""


class LeaderElector:
    """One candidate for one Lease; see the module docstring for the rules."""

    def __init__(
        self,
        api: KubeApi,
        namespace: str,
        name: str,
        identity: str,
        *,
        lease_duration: float = LEASE_DURATION_S,
        renew_deadline: float = RENEW_DEADLINE_S,
        retry_period: float = RETRY_PERIOD_S,
        clock: Clock | None = None,
    ) -> None:
        if not lease_duration > renew_deadline > retry_period > 0:
            raise ValueError(
                "leader election needs lease_duration > renew_deadline > retry_period > 0, "
                f"got {lease_duration}, {renew_deadline}, {retry_period}"
            )
        if not identity:
            raise ValueError("leader election needs a non-empty identity")
        self.api = api
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.clock = clock or RealClock()
        self._observed: dict[str, Any] = {}  # the lease's spec as last read or written
        self._observed_rv = ""
        self._observed_at = 0.0  # our monotonic time when that spec first appeared

    @property
    def holder(self) -> str:
        """Who held the lease when this candidate last looked ("" for nobody)."""
        return str(self._observed.get("holderIdentity") or "")

    @property
    def is_leader(self) -> bool:
        return self.holder == self.identity

    def _observe(self, lease: dict[str, Any], mono: float) -> None:
        spec = lease.get("spec") or {}
        if spec != self._observed:
            self._observed, self._observed_at = spec, mono
        self._observed_rv = str(lease["metadata"].get("resourceVersion") or "")

    def _micro_time(self) -> str:
        return self.clock.now().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def _lease(self, spec: dict[str, Any]) -> dict[str, Any]:
        meta = {"name": self.name, "namespace": self.namespace}
        if self._observed_rv:
            meta["resourceVersion"] = self._observed_rv
        return {"apiVersion": LEASES.api_version, "kind": "Lease", "metadata": meta, "spec": spec}

    async def try_acquire_or_renew(self) -> bool:
        """One attempt to take or keep the lease; True when this candidate holds it now."""
        mono = self.clock.monotonic()
        try:
            current = await self.api.get(LEASES, self.namespace, self.name)
        except NotFound:
            return await self._create(mono)
        self._observe(current, mono)
        holder = self.holder
        duration = float(self._observed.get("leaseDurationSeconds") or self.lease_duration)
        if holder and holder != self.identity and mono < self._observed_at + duration:
            return False  # held by someone who renewed within its lease duration
        now = self._micro_time()
        transitions = int(self._observed.get("leaseTransitions") or 0)
        spec = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": math.ceil(self.lease_duration),
            "acquireTime": self._observed.get("acquireTime") if holder == self.identity else now,
            "renewTime": now,
            "leaseTransitions": transitions if holder == self.identity else transitions + 1,
        }
        try:
            written = await self.api.replace(LEASES, self._lease(spec))
        except Conflict:
            # Someone wrote the lease since we read it: they win this round. Forget what we
            # saw, so we neither think we lead nor date their write from our old read.
            self._observed, self._observed_rv = {}, ""
            return False
        self._observe(written, mono)
        return True

    async def _create(self, mono: float) -> bool:
        now = self._micro_time()
        spec = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": math.ceil(self.lease_duration),
            "acquireTime": now,
            "renewTime": now,
            "leaseTransitions": 0,
        }
        self._observed_rv = ""
        try:
            created = await self.api.create(LEASES, self._lease(spec))
        except (AlreadyExists, Conflict):
            return False
        self._observe(created, mono)
        return True

    async def release(self) -> bool:
        """Give the lease up now, if held, so a standby need not wait for it to expire."""
        if not self.is_leader:
            return False
        now = self._micro_time()
        spec = {
            "holderIdentity": "",
            "leaseDurationSeconds": 1,
            "acquireTime": now,
            "renewTime": now,
            "leaseTransitions": int(self._observed.get("leaseTransitions") or 0),
        }
        try:
            written = await self.api.replace(LEASES, self._lease(spec))
        except ApiError as exc:
            log.warning("lease %s/%s: could not release: %s", self.namespace, self.name, exc)
            return False
        self._observe(written, self.clock.monotonic())
        return True

    async def _attempt(self) -> bool:
        try:
            return await self.try_acquire_or_renew()
        except ApiError as exc:
            log.warning("lease %s/%s: %s", self.namespace, self.name, exc)
            return False

    async def run(self, lead: Callable[[], Awaitable[None]]) -> None:
        """Campaign until elected, then run ``lead()`` while keeping the lease.

        Returns when ``lead`` returns, releasing the lease. Raises
        :class:`LeadershipLost` after cancelling ``lead`` when the lease is lost; the
        caller should then stop acting as leader (a controller manager exits, so that it
        starts over with fresh caches). Cancelling ``run`` cancels ``lead`` and releases.
        """
        # 1. Campaign: one attempt per jittered retry period.
        while not await self._attempt():
            await asyncio.sleep(self.retry_period * (1 + random.random() * JITTER))
        log.info("lease %s/%s: %s is the leader", self.namespace, self.name, self.identity)
        # 2. Lead while renewing; 3. stop the work, and release what is still ours.
        task = asyncio.ensure_future(lead())
        try:
            await self._renew_while(task)
            await task  # lead's own result or exception
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await self.release()

    async def _renew_while(self, task: asyncio.Future[None]) -> None:
        renewed = self.clock.monotonic()
        while True:
            await asyncio.wait([task], timeout=self.retry_period)
            if task.done():
                return
            if await self._attempt():
                renewed = self.clock.monotonic()
            elif self.holder and not self.is_leader:
                raise LeadershipLost(f"lease {self.namespace}/{self.name} is held by {self.holder}")
            elif self.clock.monotonic() - renewed >= self.renew_deadline:
                raise LeadershipLost(
                    f"lease {self.namespace}/{self.name}: not renewed for {self.renew_deadline}s"
                )

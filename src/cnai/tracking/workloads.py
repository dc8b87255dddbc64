"""The runs of the workloads cnai starts: logging with no code inside a job.

When a job controller is about to start a job's pods it calls
:meth:`WorkloadTracking.start`, which gives the job

- a tracking run owned by the job (one per job, across all its pods, restarts and
  resumes; found again by the job's uid, so a controller that crashed before recording
  the run id never makes a second one), and
- a token Secret (type ``cnai.io/token``, owned by the job): the platform issues a token
  scoped to the job's namespace into it (:mod:`cnai.core.token_secrets`).

Its pods then get ``CNAI_RUN_ID`` and ``CNAI_TOKEN`` (by reference to the Secret; the
kubelet adds ``CNAI_SERVER`` and ``CNAI_NAMESPACE``), and ``cnai.log_metrics(...)`` in
the job's code logs to the job's run. When the job ends, :meth:`WorkloadTracking.finish`
marks the run FINISHED or FAILED and deletes the Secret, which revokes the token; a job
deleted before it ended loses its Secret (and token) to the garbage collector.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

from cnai.core.controllers.types import ControllerContext
from cnai.core.errors import AlreadyExists, NotFound
from cnai.core.kernel import TOKEN_SECRET_TYPE
from cnai.core.kinds import Secret
from cnai.core.meta import ObjectMeta, Resource, controller_ref
from cnai.core.pods import EnvVar, EnvVarSource, SecretKeySelector
from cnai.core.resources import ResourceService
from cnai.core.token_secrets import TOKEN_KEY
from cnai.tracking.sdk import RUN_ID_ENV
from cnai.tracking.store import DEFAULT_GROUP, Owner, TrackingStore, now_ms

log = logging.getLogger(__name__)

# The key under which the tracking capability shares its store with controllers.
TRACKING_STORE = "cnai.tracking.store"
TOKEN_ENV = "CNAI_TOKEN"  # noqa: S105 - a variable name, not a password
SECRETS = "secrets"
_SUFFIX = "-cnai-token"
_MAX_NAME = 253


def token_secret_name(owner_name: str) -> str:
    """``<owner>-cnai-token``, the owner part shortened to keep a valid name."""
    return owner_name[: _MAX_NAME - len(_SUFFIX)].rstrip("-.") + _SUFFIX


@dataclass(frozen=True)
class WorkloadRun:
    """A started job's run and the Secret holding its token ("" if none could be made)."""

    run_id: str
    secret: str

    def env(self) -> list[EnvVar]:
        """What the job's pods get: the run id, and the token by reference."""
        env = [EnvVar(name=RUN_ID_ENV, value=self.run_id)]
        if self.secret:
            ref = SecretKeySelector(name=self.secret, key=TOKEN_KEY)
            env.append(EnvVar(name=TOKEN_ENV, value_from=EnvVarSource(secret_key_ref=ref)))
        return env


def _owned_by(obj: Resource, owner: Resource) -> bool:
    return any(r.uid == owner.metadata.uid for r in obj.metadata.owner_references)


class WorkloadTracking:
    """Runs and tokens of jobs (see the module docstring)."""

    def __init__(self, service: ResourceService, store: TrackingStore) -> None:
        self.service = service
        self.store = store

    async def prepare(self, owner: Resource, run_id: str = "", group: str = DEFAULT_GROUP) -> str:
        """Make the job's run and ask for its token Secret ahead of starting its pods (a
        job still queued), so the token is there by the time it is admitted. Returns
        the run id."""
        if not run_id:
            run_id = await self._run(owner, owner.metadata.namespace or "", group)
        await self._secret(owner)
        return run_id

    async def start(
        self, owner: Resource, run_id: str = "", group: str = DEFAULT_GROUP
    ) -> WorkloadRun | None:
        """The job's run (created on first call) and its token Secret; None while the
        Secret waits for its token (the job owns the Secret, so filling it in wakes it)."""
        ns = owner.metadata.namespace or ""
        if not run_id:
            run_id = await self._run(owner, ns, group)
        secret = await self._secret(owner)
        if secret is None:
            return None
        name = secret.metadata.name
        if not _owned_by(secret, owner) or secret.type != TOKEN_SECRET_TYPE:
            log.warning(
                "secret %s/%s is not %s's token Secret; its pods get no token",
                ns,
                name,
                owner.metadata.name,
            )
            return WorkloadRun(run_id, "")
        return WorkloadRun(run_id, name) if TOKEN_KEY in secret.data else None

    async def _secret(self, owner: Resource) -> Secret | None:
        """The job's token Secret; None if it was just asked for."""
        ns = owner.metadata.namespace or ""
        name = token_secret_name(owner.metadata.name)
        try:
            return Secret.model_validate(await self.service.get(SECRETS, ns, name))
        except NotFound:
            body = Secret(
                metadata=ObjectMeta(
                    name=name, namespace=ns, owner_references=[controller_ref(owner)]
                ),
                type=TOKEN_SECRET_TYPE,
            )
            with contextlib.suppress(AlreadyExists):
                await self.service.create(SECRETS, body.to_dict(), ns)
            return None

    async def finish(self, owner: Resource, run_id: str, succeeded: bool) -> None:
        """End the job's run and revoke its token, once (the Secret marks "not yet")."""
        ns = owner.metadata.namespace or ""
        name = token_secret_name(owner.metadata.name)
        try:
            secret = Secret.model_validate(await self.service.get(SECRETS, ns, name))
        except NotFound:
            return
        if not _owned_by(secret, owner):
            return
        if run_id:
            with contextlib.suppress(NotFound):
                run = await self.store.get_run(ns, run_id)
                if run.status == "RUNNING":
                    status = "FINISHED" if succeeded else "FAILED"
                    await self.store.update_run(ns, run_id, status=status, end_ms=now_ms())
        with contextlib.suppress(NotFound):
            await self.service.delete(SECRETS, ns, name)

    async def _run(self, owner: Resource, ns: str, group: str) -> str:
        uid = owner.metadata.uid or ""
        found = await self.store.list_runs(ns, owner_uid=uid, limit=1)
        if found:
            return found[0].id
        group_id = (await self.store.ensure_group(ns, group or DEFAULT_GROUP)).id
        run = await self.store.create_run(
            ns,
            group_id=group_id,
            name=owner.metadata.name,
            owner=Owner(owner.kind, owner.metadata.name, uid),
        )
        return run.id


def workload_tracking(ctx: ControllerContext) -> WorkloadTracking | None:
    """The platform's workload tracking, if the tracking capability is serving."""
    store = ctx.services.get(TRACKING_STORE)
    return WorkloadTracking(ctx.service, store) if isinstance(store, TrackingStore) else None

"""A pod's env and working directory as Ray's ``runtime_env``.

- ``env_vars``: the pod's resolved env (Secret values included: they live in the
  cluster's GCS with the actor's spec, as any Ray runtime_env does);
- ``working_dir``: a ``scheme://`` URI (``s3://…/code.zip``, ``gcs://…``) is passed on;
  a directory on the platform's machine is zipped and uploaded to the cluster here (Ray
  itself uploads local directories only for a whole job, at ``ray.init``, and refuses
  them on one actor); any other path is left to the actor as its cwd on the worker;
- ``pip``: only if the pod asks, with the annotation ``cnai.io/ray-pip`` (requirements
  one per line or comma-separated); Ray installs them in a virtualenv on each node that
  runs the pod.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from cnai.core.runtime import PodLaunch

log = logging.getLogger(__name__)

PIP_ANNOTATION = "cnai.io/ray-pip"


def runtime_env_of(pod: PodLaunch) -> dict[str, Any]:
    """Ray's runtime_env for the pod, its working_dir not uploaded yet."""
    env: dict[str, Any] = {"env_vars": dict(pod.env)}
    wd = pod.working_dir
    if wd and "://" in wd:
        env["working_dir"] = wd
    elif wd and os.path.isdir(os.path.expanduser(wd)):
        env["working_dir"] = os.path.abspath(os.path.expanduser(wd))
    annotations = ((pod.pod or {}).get("metadata") or {}).get("annotations") or {}
    pip = str(annotations.get(PIP_ANNOTATION, "")).replace(",", "\n").split()
    if pip:
        env["pip"] = pip
    return env


def upload_working_dir(runtime_env: dict[str, Any]) -> dict[str, Any]:
    """The runtime_env with a local working_dir uploaded and replaced by its ``gcs://``
    URI (content-addressed: uploaded once), with Ray's own helper, the one ``ray.init``
    uses (a private API: .gitignore and Ray's default excludes are honoured). Blocks."""
    from ray._private.runtime_env.working_dir import upload_working_dir_if_needed
    from ray.util.client import ray as client

    if "://" in str(runtime_env.get("working_dir", "://")):
        return runtime_env
    # Over the Ray client (ray://), Ray's upload pins the package with an RPC that the
    # client server does not implement, and retries it forever: upload without the pin.
    connected = client.is_connected()  # type: ignore[no-untyped-call]  # untyped in ray
    upload = _upload_unpinned if connected else None
    with tempfile.TemporaryDirectory(prefix="cnai-ray-upload-") as scratch:
        return dict(
            upload_working_dir_if_needed(
                dict(runtime_env), True, scratch_dir=scratch, logger=log, upload_fn=upload
            )
        )


def _upload_unpinned(path: str, excludes: list[str] | None = None, is_file: bool = False) -> None:
    """Ray's upload of a directory, less its pin (see :func:`upload_working_dir`)."""
    from ray._private.runtime_env import packaging

    uri = packaging.get_uri_for_directory(path, include_gitignore=True, excludes=excludes)
    if packaging.package_exists(uri):
        return
    with tempfile.TemporaryDirectory(prefix="cnai-ray-upload-") as scratch:
        target = Path(scratch) / "package.zip"
        packaging.create_package(path, target, include_gitignore=True, excludes=excludes)
        packaging.upload_package_to_gcs(uri, target.read_bytes())

"""``GET /metrics``: the platform's registry in Prometheus' text format, admin only.

What the platform's parts record as they work is in the registry already (see
:mod:`cnai.core.metrics`). What is a state rather than an event is read from the store
when scraped, so it is never stale and costs nothing between scrapes:

- ``cnai_clusterqueue_pending_workloads{cluster_queue}`` and
  ``cnai_clusterqueue_admitted_workloads{cluster_queue}``: from each ClusterQueue's status;
- ``cnai_clusterqueue_nominal_quota{cluster_queue,flavor,resource}`` and
  ``cnai_clusterqueue_resource_usage{cluster_queue,flavor,resource}``: its quota and what
  admitted workloads use, in the resource's base unit (cpu in cores, memory in bytes);
- ``cnai_localqueue_pending_workloads{namespace,local_queue}``;
- ``cnai_pods{namespace,phase}``: pods by phase;
- ``cnai_trainjob_restarts{namespace,trainjob}``: gang restarts of each TrainJob;
- per GPU, where NVML finds any (pynvml, if installed), the DCGM exporter's families
  with its labels (``gpu``, ``UUID``, ``device``, ``modelName``, ``Hostname``):
  ``DCGM_FI_DEV_GPU_UTIL`` (%), ``DCGM_FI_DEV_FB_USED`` and ``DCGM_FI_DEV_FB_FREE``
  (MiB), ``DCGM_FI_DEV_GPU_TEMP`` (C) and ``DCGM_FI_DEV_POWER_USAGE`` (W), so that
  dashboards built for DCGM work unchanged;
- the platform process's CPU, memory and open files (``process_*``).

The endpoint takes an admin token, as the metrics name every namespace and queue:
Prometheus sends it with ``authorization: {credentials: TOKEN}`` in its scrape config.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, ProcessCollector, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from cnai.core.errors import Forbidden, NotFound
from cnai.core.metrics import metrics_registry
from cnai.core.quantity import parse_quantity
from cnai.core.server.extensions import RouteContext

log = logging.getLogger(__name__)
PATH = "/metrics"


@dataclass
class GPUSample:
    """One GPU's readings at a scrape."""

    index: int
    uuid: str
    name: str
    utilization: float  # percent
    used_mib: float
    free_mib: float
    temperature: float | None = None
    power_watts: float | None = None


@dataclass
class Snapshot:
    """What a scrape read from the store and from NVML."""

    clusterqueues: list[dict[str, Any]] = field(default_factory=list)
    localqueues: list[dict[str, Any]] = field(default_factory=list)
    pods: list[dict[str, Any]] = field(default_factory=list)
    trainjobs: list[dict[str, Any]] = field(default_factory=list)
    gpus: list[GPUSample] = field(default_factory=list)


class ClusterCollector(Collector):
    """The families read when scraped, from the :class:`Snapshot` the route just took."""

    def __init__(self, hostname: str) -> None:
        self.hostname = hostname
        self.snapshot = Snapshot()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        snap = self.snapshot
        yield from _queues(snap)
        pods = GaugeMetricFamily(
            "cnai_pods", "Pods by namespace and phase.", labels=["namespace", "phase"]
        )
        counts: dict[tuple[str, str], int] = {}
        for pod in snap.pods:
            key = (_meta(pod, "namespace"), (pod.get("status") or {}).get("phase", "Pending"))
            counts[key] = counts.get(key, 0) + 1
        for (ns, phase), n in sorted(counts.items()):
            pods.add_metric([ns, phase], n)
        yield pods
        restarts = GaugeMetricFamily(
            "cnai_trainjob_restarts",
            "Gang restarts of each TrainJob, all causes.",
            labels=["namespace", "trainjob"],
        )
        for job in snap.trainjobs:
            value = (job.get("status") or {}).get("restarts", 0)
            restarts.add_metric([_meta(job, "namespace"), _meta(job, "name")], float(value or 0))
        yield restarts
        yield from _gpus(snap.gpus, self.hostname)


def _queues(snap: Snapshot) -> Iterator[GaugeMetricFamily]:
    cq_labels = ["cluster_queue"]
    pending = GaugeMetricFamily(
        "cnai_clusterqueue_pending_workloads", "Workloads waiting for admission.", labels=cq_labels
    )
    admitted = GaugeMetricFamily(
        "cnai_clusterqueue_admitted_workloads", "Workloads holding quota.", labels=cq_labels
    )
    usage_labels = ["cluster_queue", "flavor", "resource"]
    nominal = GaugeMetricFamily(
        "cnai_clusterqueue_nominal_quota",
        "Nominal quota per flavor and resource (cpu in cores, memory in bytes).",
        labels=usage_labels,
    )
    used = GaugeMetricFamily(
        "cnai_clusterqueue_resource_usage",
        "Quota used by admitted workloads per flavor and resource.",
        labels=usage_labels,
    )
    for cq in snap.clusterqueues:
        name = _meta(cq, "name")
        status = cq.get("status") or {}
        pending.add_metric([name], float(status.get("pendingWorkloads", 0)))
        admitted.add_metric([name], float(status.get("admittedWorkloads", 0)))
        for flavor in status.get("flavorsUsage") or []:
            for resource in flavor.get("resources") or []:
                labels = [name, flavor.get("name", ""), resource.get("name", "")]
                nominal.add_metric(labels, _number(resource.get("nominal", "0")))
                used.add_metric(labels, _number(resource.get("used", "0")))
    lq = GaugeMetricFamily(
        "cnai_localqueue_pending_workloads",
        "Workloads waiting in each LocalQueue.",
        labels=["namespace", "local_queue"],
    )
    for queue in snap.localqueues:
        waiting = float((queue.get("status") or {}).get("pendingWorkloads", 0))
        lq.add_metric([_meta(queue, "namespace"), _meta(queue, "name")], waiting)
    yield from (pending, admitted, nominal, used, lq)


def _gpus(gpus: list[GPUSample], hostname: str) -> Iterator[GaugeMetricFamily]:
    if not gpus:
        return
    labels = ["gpu", "UUID", "device", "modelName", "Hostname"]
    families = {
        "util": GaugeMetricFamily("DCGM_FI_DEV_GPU_UTIL", "GPU utilization (in %).", labels=labels),
        "used": GaugeMetricFamily(
            "DCGM_FI_DEV_FB_USED", "Framebuffer memory used (in MiB).", labels=labels
        ),
        "free": GaugeMetricFamily(
            "DCGM_FI_DEV_FB_FREE", "Framebuffer memory free (in MiB).", labels=labels
        ),
        "temp": GaugeMetricFamily("DCGM_FI_DEV_GPU_TEMP", "GPU temperature (in C).", labels=labels),
        "power": GaugeMetricFamily("DCGM_FI_DEV_POWER_USAGE", "Power draw (in W).", labels=labels),
    }
    for g in gpus:
        values = [str(g.index), g.uuid, f"nvidia{g.index}", g.name, hostname]
        families["util"].add_metric(values, g.utilization)
        families["used"].add_metric(values, g.used_mib)
        families["free"].add_metric(values, g.free_mib)
        if g.temperature is not None:
            families["temp"].add_metric(values, g.temperature)
        if g.power_watts is not None:
            families["power"].add_metric(values, g.power_watts)
    yield from families.values()


def read_gpus() -> list[GPUSample]:
    """Each GPU's readings from NVML; none where pynvml or a driver is missing
    (blocking: run it in a thread)."""
    try:
        nvml: Any = importlib.import_module("pynvml")
    except ImportError:
        return []
    try:
        nvml.nvmlInit()
    except Exception:  # NVMLError: no driver here
        return []
    try:
        samples = []
        for index in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            memory = nvml.nvmlDeviceGetMemoryInfo(handle)
            sample = GPUSample(
                index,
                _text(nvml.nvmlDeviceGetUUID(handle)),
                _text(nvml.nvmlDeviceGetName(handle)),
                float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu),
                memory.used / 2**20,
                memory.free / 2**20,
            )
            with contextlib.suppress(Exception):  # not every device reports these
                sample.temperature = float(
                    nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU)
                )
            with contextlib.suppress(Exception):
                sample.power_watts = nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0
            samples.append(sample)
        return samples
    except Exception:
        log.warning("reading GPUs through NVML failed", exc_info=True)
        return []
    finally:
        with contextlib.suppress(Exception):
            nvml.nvmlShutdown()


class MetricsEndpoint:
    """``GET /metrics`` over the platform's registry."""

    def __init__(self, ctx: RouteContext) -> None:
        self.api = ctx.api
        self.registry = metrics_registry(ctx.services)
        self.cluster = ClusterCollector(socket.gethostname())
        self.registry.register(self.cluster)
        ProcessCollector(registry=self.registry)

    async def handle(self, request: Request) -> Response:
        principal = self.api.principal(request)
        if not principal.is_admin:
            raise Forbidden("/metrics needs an admin token: the metrics name every namespace")
        self.cluster.snapshot = await self.read()
        body = generate_latest(self.registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    async def read(self) -> Snapshot:
        service = self.api.service
        snap = Snapshot()
        for plural in ("clusterqueues", "localqueues", "pods", "trainjobs"):
            with contextlib.suppress(NotFound):  # a kind whose capability is not loaded
                setattr(snap, plural, (await service.list(plural)).items)
        snap.gpus = await asyncio.to_thread(read_gpus)
        return snap


def route_factory(ctx: RouteContext) -> list[BaseRoute]:
    endpoint = MetricsEndpoint(ctx)
    return [Route(PATH, endpoint.handle, methods=["GET"])]


def _meta(obj: dict[str, Any], key: str) -> str:
    return str((obj.get("metadata") or {}).get(key) or "")


def _number(quantity: str) -> float:
    try:
        return float(parse_quantity(quantity))
    except (ValueError, ArithmeticError):
        return 0.0


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)

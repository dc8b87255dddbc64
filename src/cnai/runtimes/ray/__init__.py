"""The ``ray`` runtime: each pod is a Ray actor on a Ray cluster (extra ``cnai[ray]``).

Modules: ``runtime`` (the Runtime protocol, in the platform process), ``actor`` (the
actor that runs a pod's process on a Ray worker, shipped to the cluster by value),
``records`` (each pod's state in Ray's internal KV store, so a restarted platform adopts
its pods) and ``placement`` (requests as Ray resources, gangs as placement groups, Ray
nodes as cnai Nodes).

Nothing here imports ``ray`` at import time: it is imported inside the methods that use
it, so the CLI and the other runtimes never load it.
"""

from cnai.runtimes.ray.runtime import RayRuntime

__all__ = ["RayRuntime"]

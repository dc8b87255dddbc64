"""The ``local`` runtime: each pod is a process on this machine, supervised by a shim.

Modules: ``runtime`` (the Runtime protocol, in the platform process), ``shim`` (the
supervisor process that outlives the platform), ``layout`` (the files of a pod's
directory, the contract between the two), ``memory`` (cgroup v2 / v1 / RSS watchdog),
``procfs`` (process groups and RSS from /proc), ``exits`` (exit status to reason) and
``machine`` (this node's capacity and GPUs).

The shim imports only the standard library and its siblings here, by relative import,
so it can run without importing ``cnai`` itself (see ``runtime.SHIM_BOOTSTRAP``).
"""

from cnai.runtimes.local.runtime import LocalRuntime

__all__ = ["LocalRuntime"]

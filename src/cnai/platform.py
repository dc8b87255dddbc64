"""Assembles the kernel, the capabilities and the runtime into the platform `cnai up` runs.

State lives under ``CNAI_HOME``: ``state.db`` (the object store), ``config.yaml``
(server URL and admin token, mode 0600), ``platform.json`` (pid and address of the
running platform) and ``logs/``.

The runtime is local processes, Kubernetes Pods (operator mode) or a Ray cluster
(docs/ray.md). Ray is the one multi-node runtime: each Ray node is a cnai Node, kept
current by a refresh loop, and one pod controller serves them all.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import importlib
import inspect
import json
import logging
import os
import signal
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import uvicorn
from starlette.routing import BaseRoute

from cnai.core import tracing
from cnai.core.auth import TOKENS, TokenAuthority
from cnai.core.clock import RealClock
from cnai.core.config import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    ClientConfig,
    ConfigError,
    load_config,
    write_config,
)
from cnai.core.controllers import ControllerContext, ControllerFactory
from cnai.core.controllers.manager import Manager
from cnai.core.errors import AlreadyExists, Conflict, NotFound
from cnai.core.events import EventRecorder
from cnai.core.gc import GarbageCollector
from cnai.core.kernel import DEFAULT_NAMESPACE, register_kernel
from cnai.core.kinds import Namespace
from cnai.core.kubelet import pod_controller, sweep_orphans
from cnai.core.metrics import metrics_registry
from cnai.core.namespaces import NamespaceFinalizer
from cnai.core.nodes import runtime_node_names, sync_node, sync_nodes
from cnai.core.registry import Registry
from cnai.core.resources import ResourceService
from cnai.core.runtime import MultiNode, Runtime
from cnai.core.server.app import ApiServer, create_app
from cnai.core.server.body import DEFAULT_MAX_BODY_BYTES
from cnai.core.server.extensions import RouteContext, RouteFactory
from cnai.core.server.front import front_protocol
from cnai.core.store.protocol import Obj, Store, WatchEventType
from cnai.core.store.sqlite import SQLiteStore
from cnai.core.token_secrets import sweep_token_secrets, token_secret_controller
from cnai.runtimes.local import LocalRuntime
from cnai.scheduling.api import WORKLOAD_ANNOTATION
from cnai.scheduling.controller import HANDOFF_SERVICE

if TYPE_CHECKING:
    from cnai.runtimes.kubernetes.operator import ClusterOptions
    from cnai.runtimes.kubernetes.store import KubernetesStore

log = logging.getLogger("cnai.platform")

# Changes kept for watches to resume from (older versions get 410 Gone); the store
# trims its history every 1000 writes.
DEFAULT_WATCH_HISTORY = 50_000


class PlatformError(Exception):
    """The platform cannot start; the message says why and what to do."""


@dataclass
class PlatformOptions:
    """What `cnai up` was asked for."""

    home: Path
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    durability: str = "normal"
    watch_history: int = DEFAULT_WATCH_HISTORY
    config_path: Path | None = None
    # Operator mode (docs/kubernetes.md): the Kubernetes API as the store, and pods
    # rendered to Kubernetes Pods. None: the embedded SQLite store and local processes.
    cluster: ClusterOptions | None = None
    # The Ray runtime (docs/ray.md), with the SQLite store: a Ray address (ray://host:10001
    # or host:port), or "auto" for a Ray head on this machine. None: not Ray.
    ray_address: str | None = None
    # Where workloads reach the API when the runtime runs them on other machines (a Ray
    # cluster in Kubernetes: cnai's Service). "": derived, see workload_url.
    advertise_url: str = ""

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def workload_url(self) -> str:
        """Where workloads reach the API: in a cluster, cnai's Service; on this machine,
        loopback when listening on all interfaces; or what was advertised."""
        if self.advertise_url:
            return self.advertise_url
        if self.cluster is not None:
            return self.cluster.server_url
        if self.host in ("0.0.0.0", "::", ""):  # noqa: S104 - comparing, not binding
            return f"http://127.0.0.1:{self.port}"
        return self.url


class Capability(Protocol):
    """A capability package's entry point: it hands its kinds (and, from the controller
    manager on, its controllers) to the platform."""

    def register(self, platform: Platform) -> None: ...


# The capability packages `cnai up` assembles, in dependency order. Each is a module
# with a module-level ``register(platform)``.
CAPABILITIES: tuple[str, ...] = (
    "cnai.scheduling",
    "cnai.batch",
    "cnai.tracking",
    "cnai.training",
    "cnai.tuning",
    "cnai.serving",
    "cnai.observability",
    "cnai.ui",
)


def load_capabilities(names: tuple[str, ...] = CAPABILITIES) -> list[Capability]:
    """Import the capability modules by name."""
    return [cast(Capability, importlib.import_module(name)) for name in names]


def platform_registry() -> Registry:
    """Every kind `cnai up` serves (the kernel's and the capabilities'), without starting
    anything: what `cnai k8s manifests` turns into CRDs."""
    return Platform(PlatformOptions(home=Path("."))).registry


def bind(host: str, port: int) -> socket.socket:
    """Bind the listening socket ourselves, to fail early with a clear message."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise PlatformError(
            f"cannot listen on {host}:{port}: {exc.strerror}; is cnai already running "
            "(`cnai down` stops it)? Or pick another port with --port"
        ) from None
    sock.listen(2048)
    return sock


@dataclass
class _Background:
    """The platform's loops, stopped once however shutdown begins."""

    manager: Manager
    gc: GarbageCollector | None
    finalizer: NamespaceFinalizer
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    stopped: bool = False

    async def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        await self.manager.stop(timeout=5.0)
        if self.gc is not None:
            await self.gc.stop()
        await self.finalizer.stop()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


NODE_REFRESH_S = 30.0
RAY_NODE_REFRESH_S = 5.0  # a dead Ray node must stop taking pods within seconds


async def _refresh_node(service: ResourceService, runtime: Runtime) -> None:
    while True:
        await asyncio.sleep(NODE_REFRESH_S)
        try:
            await sync_node(service, runtime)
        except Exception:
            log.exception("refreshing the Node from the %s runtime failed", runtime.name)


async def _refresh_nodes(service: ResourceService, runtime: MultiNode, names: set[str]) -> None:
    """Keep a multi-node runtime's Nodes current; add new ones to the pod controller's
    ``names`` (lost ones stay: their pods are still the controller's to observe)."""
    while True:
        await asyncio.sleep(RAY_NODE_REFRESH_S)
        try:
            names.update(await sync_nodes(service, runtime))
        except Exception:
            log.exception("refreshing the Nodes from the %s runtime failed", runtime.name)


def open_ray_runtime(address: str, home: Path) -> Runtime:
    """The Ray runtime on ``address`` ("auto": this machine's head, started if needed).
    Ray is imported here and only here, so that nothing else loads it."""
    from cnai.runtimes.ray import RayRuntime
    from cnai.runtimes.ray.head import RayHeadError, ensure_head

    if address == "auto":
        try:
            address = ensure_head(home / "ray")
        except RayHeadError as exc:
            raise PlatformError(f"--runtime ray: {exc}") from None
    return RayRuntime(address)


TOKEN_FOLLOW_RETRY_S = 2.0


async def _follow_tokens(store: Store, tokens: TokenAuthority) -> None:
    """Operator mode: reload the token records whenever one is issued or revoked, on any
    replica, so that every replica accepts the same tokens (a workload reaches whichever
    replica cnai's Service picks, with the token the leader issued it)."""
    while True:
        try:
            version = (await store.list(TOKENS)).resource_version
            await tokens.load()
            async for event in store.watch(TOKENS, resource_version=version):
                if event.type is not WatchEventType.BOOKMARK:
                    await tokens.load()
        except Exception as exc:  # Gone, or the cluster unreachable: list again shortly
            log.warning("following the token records: %s; listing them again", exc)
        await asyncio.sleep(TOKEN_FOLLOW_RETRY_S)


class _Elected:
    """The controllers, run only while this replica holds the Lease.

    Losing the Lease stops them and the whole server (``lost``, with the reason): a
    replica that was cut off must not act on caches that may be stale, so it exits and
    starts over, as client-go's leader election advises. So does a leader whose
    controllers failed to start: it gives the Lease up, and exits rather than serve on
    as a healthy-looking replica that will never run them.
    """

    def __init__(
        self,
        elector: Any,
        start: Callable[[], Awaitable[_Background]],
        lost: Callable[[str], None],
        close: Callable[[], Awaitable[None]],
    ) -> None:
        self._elector = elector
        self._start = start
        self._lost = lost
        self._close = close
        self.task = asyncio.create_task(self._run(), name="leader-election")

    async def _lead(self) -> None:
        background = await self._start()
        try:
            await asyncio.Event().wait()  # until cancelled: lost, or shutting down
        finally:
            await background.stop()

    async def _run(self) -> None:
        from cnai.runtimes.kubernetes.leader import LeadershipLost

        try:
            await self._elector.run(self._lead)
        except LeadershipLost as exc:
            log.error("lost leadership, stopping: %s", exc)
            self._lost("this replica lost the controllers' Lease")
        except Exception:
            log.exception("the controllers failed while leading, stopping")
            self._lost("this replica's controllers failed (the log above says why)")

    async def stop(self) -> None:
        if not self.task.done():
            self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self._close()


def flavor_labels_from(service: ResourceService) -> Callable[[Obj], Awaitable[dict[str, str]]]:
    """What the kubernetes runtime asks to place a pod: the node labels of the flavors
    its Workload was admitted in (runtimes never read the store themselves)."""

    async def flavor_labels(pod: Obj) -> dict[str, str]:
        meta = pod.get("metadata") or {}
        workload = (meta.get("annotations") or {}).get(WORKLOAD_ANNOTATION)
        if not workload:
            return {}
        try:
            wl = await service.get("workloads", meta.get("namespace"), workload)
        except NotFound:
            return {}
        admission = (wl.get("status") or {}).get("admission") or {}
        names = {
            flavor
            for assignment in admission.get("podSetAssignments") or ()
            for flavor in (assignment.get("flavors") or {}).values()
        }
        labels: dict[str, str] = {}
        for name in sorted(names):
            with contextlib.suppress(NotFound):
                flavor = await service.get("resourceflavors", None, name)
                labels.update((flavor.get("spec") or {}).get("nodeLabels") or {})
        return labels

    return flavor_labels


class _Server(uvicorn.Server):
    """uvicorn's server, ending open watch streams first so shutdown need not wait on them."""

    def __init__(
        self, config: uvicorn.Config, before_shutdown: Callable[[], Awaitable[None]]
    ) -> None:
        super().__init__(config)
        self._before_shutdown = before_shutdown

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await self._before_shutdown()
        await super().shutdown(sockets)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn re-raises the captured SIGINT/SIGTERM once it has stopped, which would
        # kill the process before the platform closes its store and removes its state
        # file; a signal here means "stop cleanly", so it is handled and not re-raised.
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        signals = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self.handle_exit) for sig in signals}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


class Platform:
    """One embedded platform: store, API server and background loops."""

    def __init__(
        self, options: PlatformOptions, capabilities: Sequence[Capability] | None = None
    ) -> None:
        self.options = options
        self.home = options.home
        self.registry = Registry()
        # Capabilities append factories here; each builds its controller once the
        # store and runtime exist.
        self.controller_factories: list[ControllerFactory] = []
        # And factories of extra API routes (see cnai.core.server.extensions).
        self.route_factories: list[RouteFactory] = []
        register_kernel(self.registry)
        for capability in load_capabilities() if capabilities is None else capabilities:
            capability.register(self)
        self.store: Store | None = None
        self.server: _Server | None = None
        self.leader_failure = ""  # operator mode: why this replica stopped leading
        # Set by _open_engines for a runtime cnai presents node by node (Ray): having
        # nodes() is not enough, the Kubernetes runtime has it and is one node on purpose.
        self.multi_node: MultiNode | None = None

    @property
    def config_path(self) -> Path:
        return self.options.config_path or self.home / "config.yaml"

    @property
    def state_path(self) -> Path:
        return self.home / "platform.json"

    async def _bootstrap(self, store: Store, tokens: TokenAuthority) -> None:
        """First-start state: the default namespace and an admin token in the config."""
        service = ResourceService(self.registry, store)
        with contextlib.suppress(AlreadyExists):
            await service.create("namespaces", Namespace.new(DEFAULT_NAMESPACE).to_dict())
        await tokens.load()
        if self.options.cluster is not None:
            token = await self._cluster_admin_token(service, tokens, self.options.cluster)
            write_config(self.config_path, ClientConfig(server=self.options.url, token=token))
        elif not self._config_token_valid(tokens):
            token, _ = await tokens.issue(None, "admin (written by cnai up)")
            write_config(self.config_path, ClientConfig(server=self.options.url, token=token))
            log.info("wrote admin credentials to %s", self.config_path)
        else:
            cfg = load_config(self.config_path)
            if cfg.server != self.options.url:
                write_config(
                    self.config_path,
                    ClientConfig(
                        server=self.options.url,
                        token=cfg.token,
                        namespace=cfg.namespace,
                        name=cfg.name,
                    ),
                )

    async def _cluster_admin_token(
        self, service: ResourceService, tokens: TokenAuthority, cluster: ClusterOptions
    ) -> str:
        """The admin token every replica accepts, kept in a Secret of the operator's
        namespace: read it if it is there and valid, else issue one and store it."""
        from cnai.runtimes.kubernetes.operator import ADMIN_SECRET, ADMIN_SECRET_KEY

        for _ in range(3):
            try:
                secret = await service.get("secrets", cluster.namespace, ADMIN_SECRET)
            except NotFound:
                secret = None
            if secret is not None:
                encoded = (secret.get("data") or {}).get(ADMIN_SECRET_KEY, "")
                token = base64.b64decode(encoded).decode() if encoded else ""
                await tokens.load()  # another replica may have issued it since we loaded
                with contextlib.suppress(Exception):
                    if tokens.verify(f"Bearer {token}").is_admin:
                        return token
            token, record = await tokens.issue(None, "admin (kept in Secret cnai-admin-token)")
            meta: dict[str, str] = {"name": ADMIN_SECRET, "namespace": cluster.namespace}
            body: Obj = {
                "apiVersion": "cnai.io/v1alpha1",
                "kind": "Secret",
                "metadata": meta,
                "data": {ADMIN_SECRET_KEY: base64.b64encode(token.encode()).decode()},
            }
            try:
                if secret is None:
                    await service.create("secrets", body)
                else:
                    meta["resourceVersion"] = secret["metadata"]["resourceVersion"]
                    await service.update("secrets", body, cluster.namespace, ADMIN_SECRET)
                log.info("stored the admin token in Secret %s/%s", cluster.namespace, ADMIN_SECRET)
                return token
            except (AlreadyExists, Conflict):
                await tokens.revoke(record.id)  # another replica won; use its token
        raise PlatformError(f"cannot settle Secret {cluster.namespace}/{ADMIN_SECRET}")

    def _config_token_valid(self, tokens: TokenAuthority) -> bool:
        try:
            cfg = load_config(self.config_path)
        except ConfigError:
            return False
        if not cfg.token:
            return False
        try:
            return tokens.verify(f"Bearer {cfg.token}").is_admin
        except Exception:
            return False

    async def serve(self, on_ready: Callable[[], None] | None = None) -> None:
        """Run until SIGINT/SIGTERM; ``on_ready`` runs in a thread once serving."""
        self.home.mkdir(parents=True, exist_ok=True)
        os.chmod(self.home, 0o700)
        sock = bind(self.options.host, self.options.port)
        store, runtime, service = self._open_engines()
        self.store = store
        tokens = TokenAuthority(store)
        await self._bootstrap(store, tokens)
        # Routes first: capabilities open what they share with their controllers there.
        extensions: list[RouteContext] = []
        services: dict[str, Any] = {}
        metrics = metrics_registry(services)  # Prometheus: shared, served on /metrics
        if self.options.cluster is not None and self.options.cluster.admission == "kueue":
            services[HANDOFF_SERVICE] = "kueue"  # Kueue owns queues and quota

        def extra_routes(api: ApiServer) -> list[BaseRoute]:
            ctx = RouteContext(api, self.home, services=services)
            extensions.append(ctx)
            return [route for factory in self.route_factories for route in factory(ctx)]

        app, api = create_app(
            service,
            tokens,
            max_body_bytes=self.options.max_body_bytes,
            runtime=runtime,
            extra_routes=extra_routes,
            metrics=metrics,
        )
        if tracing.configure("cnai-platform"):
            from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

            # A span per API request (named after its route by the metrics middleware);
            # not one per ASGI message, nor for probes and scrapes.
            app = OpenTelemetryMiddleware(
                app, excluded_urls="/healthz,/readyz,/metrics", exclude_spans=["receive", "send"]
            )
        background = await self._start_background(store, service, runtime, tokens, services)
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=5,
            http=front_protocol([lane for ctx in extensions for lane in ctx.lanes]),
            loop="none",
        )

        async def before_shutdown() -> None:
            # Controllers first (they write through the store), then the watch streams.
            await background.stop()
            if isinstance(store, SQLiteStore):
                store.broadcaster.close_all()
            elif self.options.cluster is not None:
                await cast("KubernetesStore", store).end_watches()

        self.server = _Server(config, before_shutdown=before_shutdown)
        api.ready = True
        self._write_state()
        ready_task = asyncio.create_task(self._when_started(on_ready))
        try:
            await self.server.serve(sockets=[sock])
        finally:
            ready_task.cancel()
            await background.stop()
            for ctx in extensions:
                for close in ctx.closers:
                    await close()
            await store.close()
            await self._close_runtime(runtime)
            tracing.shutdown()  # export the spans still batched
            with contextlib.suppress(FileNotFoundError):
                self.state_path.unlink()
            sock.close()
        if self.leader_failure:
            raise PlatformError(f"{self.leader_failure}; restart it to rejoin")

    def _open_engines(self) -> tuple[Store, Runtime, ResourceService]:
        """The store and runtime: SQLite and local processes, or in operator mode the
        Kubernetes API and Kubernetes Pods."""
        cluster = self.options.cluster
        if cluster is None:
            sqlite = SQLiteStore(
                self.home / "state.db",
                durability=self.options.durability,
                watch_history=self.options.watch_history,
            )
            service = ResourceService(self.registry, sqlite)
            if self.options.ray_address is not None:
                return sqlite, self._open_ray(self.options.ray_address), service
            return sqlite, LocalRuntime(self.home / "pods"), service
        from cnai.runtimes.kubernetes import operator

        try:
            api = operator.connect(cluster)
        except Exception as exc:  # a missing kubeconfig, a context that is not there
            raise PlatformError(f"cannot connect to Kubernetes: {exc}") from None
        store = operator.open_store(api, self.registry)
        service = ResourceService(self.registry, store)
        runtime = operator.open_runtime(api, cluster, flavor_labels_from(service))
        return store, runtime, service

    def _open_ray(self, address: str) -> Runtime:
        try:
            runtime = open_ray_runtime(address, self.home)
        except PlatformError:
            raise
        except Exception as exc:  # Ray's own errors: an address nothing answers on
            raise PlatformError(f"--ray-address {address}: cannot connect to Ray: {exc}") from None
        if not isinstance(runtime, MultiNode):
            raise PlatformError(f"the {runtime.name} runtime does not list its nodes")
        self.multi_node = runtime
        return runtime

    async def _close_runtime(self, runtime: Runtime) -> None:
        """Let go of the Ray cluster (its pods keep running: see cnai.runtimes.ray.head)."""
        if self.multi_node is None:
            return
        close = getattr(runtime, "close", None)
        if close is None:
            return
        try:
            closed = close()
            if inspect.isawaitable(closed):
                await closed
        except Exception:
            log.exception("closing the %s runtime failed", runtime.name)

    async def _sync_nodes(self, service: ResourceService, runtime: Runtime) -> set[str]:
        """The names the pod controller serves: the runtime's one Node, or every Node of a
        multi-node runtime, lost ones included (see _refresh_nodes)."""
        if self.multi_node is None:
            return {await sync_node(service, runtime)}
        try:
            await sync_nodes(service, self.multi_node)
        except Exception as exc:  # the first call connects: an address nothing answers on
            where = self.options.ray_address
            raise PlatformError(f"--ray-address {where}: cannot list the Ray nodes: {exc}") from exc
        return await runtime_node_names(service, self.multi_node.name)

    async def _start_background(
        self,
        store: Store,
        service: ResourceService,
        runtime: Runtime,
        tokens: TokenAuthority,
        services: dict[str, Any],
    ) -> _Background | _Elected:
        """The controllers, on this process; in operator mode, on whichever replica
        holds the Lease (this one may take over later)."""
        cluster = self.options.cluster
        if cluster is None:
            return await self._start_controllers(store, service, runtime, tokens, services)
        from cnai.runtimes.kubernetes import operator

        def start() -> Awaitable[_Background]:
            return self._start_controllers(store, service, runtime, tokens, services)

        def lost(reason: str) -> None:
            self.leader_failure = reason
            if self.server is not None:
                self.server.should_exit = True

        # Every replica, leader or not, verifies the tokens any replica issued.
        follower = asyncio.create_task(_follow_tokens(store, tokens), name="token-follower")
        api = operator.connect(cluster)  # its own connection: renewals never queue behind watches

        async def close() -> None:
            follower.cancel()
            await asyncio.gather(follower, return_exceptions=True)
            await api.close()

        return _Elected(operator.elector(api, cluster), start, lost, close)

    async def _start_controllers(
        self,
        store: Store,
        service: ResourceService,
        runtime: Runtime,
        tokens: TokenAuthority,
        services: dict[str, Any],
    ) -> _Background:
        """The runtime's Node, then the controller manager, the GC and the namespace loop."""
        clock = RealClock()
        node_names = await self._sync_nodes(service, runtime)
        await sweep_orphans(service, runtime)
        await sweep_token_secrets(service, tokens)
        manager = Manager(store, self.registry, clock, metrics=metrics_registry(services))
        ctx = ControllerContext(
            registry=self.registry,
            store=store,
            service=service,
            clock=clock,
            runtime=runtime,
            recorder=lambda component: EventRecorder(store, component),
            server_url=self.options.workload_url,
            services=services,
            home=self.home,
            informer=manager.informer,
        )
        pod_nodes: str | set[str] = node_names if self.multi_node else next(iter(node_names))
        manager.add(pod_controller(pod_nodes)(ctx))
        manager.add(token_secret_controller(tokens)(ctx))
        for factory in self.controller_factories:
            manager.add(factory(ctx))
        # In a cluster Kubernetes' own garbage collector follows the owner references.
        in_cluster = self.options.cluster is not None
        gc = None if in_cluster else GarbageCollector(self.registry, store, clock)
        finalizer = NamespaceFinalizer(self.registry, store)
        background = _Background(manager, gc, finalizer)
        await manager.start()
        background.tasks = [asyncio.create_task(finalizer.run(), name="namespace-finalizer")]
        if gc is not None:
            background.tasks.append(asyncio.create_task(gc.run(), name="garbage-collector"))
        if in_cluster:  # nodes come and go: the cluster's capacity is refreshed
            background.tasks.append(
                asyncio.create_task(_refresh_node(service, runtime), name="node-refresh")
            )
        if self.multi_node is not None:  # each node comes and goes
            refresh = _refresh_nodes(service, self.multi_node, node_names)
            background.tasks.append(asyncio.create_task(refresh, name="node-refresh"))
        return background

    async def _when_started(self, on_ready: Callable[[], None] | None) -> None:
        assert self.server is not None
        while not self.server.started:
            await asyncio.sleep(0.02)
        log.info("cnai is serving at %s", self.options.url)
        if on_ready is not None:
            await asyncio.to_thread(on_ready)

    def _write_state(self) -> None:
        self.state_path.write_text(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "url": self.options.url,
                    "home": str(self.home),
                }
            )
        )


def run_platform(options: PlatformOptions, on_ready: Callable[[], None] | None = None) -> None:
    """Serve in the foreground on uvloop until interrupted."""
    import uvloop

    platform = Platform(options)
    uvloop.run(platform.serve(on_ready))


def read_state(home: Path) -> dict[str, object] | None:
    """The running platform's pid and URL, if one left its state file."""
    try:
        data = json.loads((home / "platform.json").read_text())
    except (FileNotFoundError, ValueError):
        return None
    return data if isinstance(data, dict) else None

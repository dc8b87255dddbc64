"""`cnai up`, `cnai down` and `cnai version`: start, stop and identify the platform."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import httpx
import typer

from cnai.cli.errors import err_console, fail
from cnai.core.config import DEFAULT_HOST, DEFAULT_PORT, ConfigError, cnai_home, platform_settings
from cnai.version import __version__

if TYPE_CHECKING:
    from cnai.platform import PlatformOptions
    from cnai.runtimes.kubernetes.operator import ClusterOptions

READY_TIMEOUT_S = 60.0
WATCH_HISTORY = 50_000  # keep in sync with cnai.platform.DEFAULT_WATCH_HISTORY
STOP_TIMEOUT_S = 20.0


def register(app: typer.Typer) -> None:
    app.command("up")(up)
    app.command("down")(down)
    app.command("version")(version)


def _alive(pid: int) -> bool:
    """True while ``pid`` runs. A zombie counts as gone: the detached platform's parent
    is whatever adopted it, which may reap it late (or never, in a container)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except (OSError, IndexError):
        return True  # no procfs: trust kill(0)


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def _running(home: Path) -> tuple[int, str] | None:
    from cnai.platform import read_state

    state = read_state(home)
    if not state:
        return None
    pid, url = int(str(state.get("pid", 0))), str(state.get("url", ""))
    return (pid, url) if pid and _alive(pid) else None


def up(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = DEFAULT_HOST,
    port: Annotated[int, typer.Option(help="Port to listen on.")] = DEFAULT_PORT,
    quickstart: Annotated[
        bool,
        typer.Option(
            "--quickstart", help="Apply examples/quickstart once ready and print a summary."
        ),
    ] = False,
    quickstart_dir: Annotated[Path, typer.Option(help="Manifests the quickstart applies.")] = Path(
        "examples/quickstart"
    ),
    detach: Annotated[
        bool,
        typer.Option(
            "--detach", "-d", help="Return once the platform is ready; stop it with `cnai down`."
        ),
    ] = False,
    durability: Annotated[
        str,
        typer.Option(
            help="normal: survive process crashes; full: also survive power loss (slower)."
        ),
    ] = "normal",
    watch_history: Annotated[
        int,
        typer.Option(
            min=0,
            help="Changes kept for watches to resume from; older resourceVersions get 410 Gone.",
        ),
    ] = WATCH_HISTORY,
    store: Annotated[
        str | None,
        typer.Option(
            help="sqlite (this machine, the default) or kubernetes (operator mode: CRs in a "
            "cluster)."
        ),
    ] = None,
    runtime: Annotated[
        str | None,
        typer.Option(
            help="local (processes here, the default), kubernetes (Pods in the cluster) or ray "
            "(actors on a Ray cluster, with --store sqlite)."
        ),
    ] = None,
    ray_address: Annotated[
        str | None,
        typer.Option(
            help="With --runtime ray: the Ray cluster (ray://host:10001 or host:port), or "
            "auto (the default) for a Ray head on this machine that cnai starts."
        ),
    ] = None,
    kubeconfig: Annotated[
        str | None, typer.Option(help="kubeconfig file (default: in-cluster, or $KUBECONFIG).")
    ] = None,
    context: Annotated[str | None, typer.Option(help="kubeconfig context.")] = None,
    admission: Annotated[
        str, typer.Option(help="Who admits gangs in a cluster: cnai, kueue or volcano.")
    ] = "cnai",
    queue: Annotated[
        str, typer.Option(help="Kueue's LocalQueue (--admission kueue) or Volcano's Queue.")
    ] = "",
    shared_gpu_resource: Annotated[
        str, typer.Option(help="The cluster's shared-GPU resource for fractional GPU requests.")
    ] = "",
    advertise_url: Annotated[
        str | None,
        typer.Option(
            help="Where pods reach the API when they run on other machines (a Ray cluster), "
            "e.g. http://cnai.cnai-system.svc:8470; default: this address."
        ),
    ] = None,
) -> None:
    """Run the platform in the foreground until Ctrl-C (or in the background with --detach).

    --store, --runtime, --ray-address and --advertise-url default to the ``platform:``
    section of the config file (``store``, ``runtime``, ``rayAddress``, ``advertiseUrl``)."""
    home = cnai_home()
    try:
        settings = platform_settings()
    except ConfigError as exc:
        raise fail(str(exc)) from None
    store = store or settings.get("store") or "sqlite"
    runtime = runtime or settings.get("runtime") or "local"
    ray_address = ray_address or settings.get("rayAddress")
    advertise_url = advertise_url or settings.get("advertiseUrl") or ""
    if not 1 <= port <= 65535:
        raise fail("--port: must be between 1 and 65535")
    if durability not in ("normal", "full"):
        raise fail("--durability: must be 'normal' or 'full'")
    running = _running(home)
    if running:
        raise fail(
            f"cnai is already running at {running[1]} (pid {running[0]}); stop it with `cnai down`"
        )
    if quickstart and not quickstart_dir.is_dir():
        raise fail(
            f"--quickstart-dir: {quickstart_dir} is not a directory; run from the "
            "repository root or pass --quickstart-dir"
        )
    from cnai.platform import PlatformOptions

    options = PlatformOptions(
        home=home, host=host, port=port, durability=durability, watch_history=watch_history
    )
    options.ray_address = _ray_address(store, runtime, ray_address)
    if advertise_url and not advertise_url.startswith(("http://", "https://")):
        raise fail(f"--advertise-url: {advertise_url!r} is not an http:// or https:// URL")
    options.advertise_url = advertise_url
    if (store, runtime) == ("kubernetes", "kubernetes"):
        if detach or quickstart:
            raise fail(
                "--store kubernetes: runs in the foreground, without --detach or --quickstart"
            )
        options.cluster = _cluster_options(
            kubeconfig, context, admission, queue, shared_gpu_resource
        )
    elif (store, runtime) not in (("sqlite", "local"), ("sqlite", "ray")):
        raise fail(
            "--store and --runtime: use sqlite with local (this machine) or ray, or "
            "kubernetes with kubernetes (operator mode); mixing them is not supported"
        )
    quick = quickstart_dir if quickstart else None
    if detach:
        _up_detached(options, quick)
    else:
        _up_foreground(options, quick)


RUNTIMES = ("local", "kubernetes", "ray")
STORES = ("sqlite", "kubernetes")


def _ray_address(store: str, runtime: str, address: str | None) -> str | None:
    """The Ray address `cnai up` was asked for (None: not the Ray runtime), or a clear
    error naming the flag."""
    if runtime not in RUNTIMES:
        raise fail(f"--runtime: must be one of {', '.join(RUNTIMES)}, not {runtime!r}")
    if store not in STORES:
        raise fail(f"--store: must be one of {', '.join(STORES)}, not {store!r}")
    if runtime != "ray":
        if address is not None:
            raise fail("--ray-address: only with --runtime ray")
        return None
    if store != "sqlite":
        raise fail(
            "--runtime ray: runs with --store sqlite only; operator mode (--store kubernetes) "
            "with the Ray runtime is not supported yet"
        )
    address = (address or "auto").strip()
    if address != "auto" and not _is_ray_address(address):
        raise fail(f"--ray-address: {address!r} is not ray://HOST:PORT, HOST:PORT or auto")
    return address


def _is_ray_address(address: str) -> bool:
    rest = address.removeprefix("ray://")
    host, _, port = rest.rpartition(":")
    return bool(host) and port.isdigit() and "/" not in host


def _cluster_options(
    kubeconfig: str | None, context: str | None, admission: str, queue: str, shared_gpu: str
) -> ClusterOptions:
    from cnai.runtimes.kubernetes.manifests import InstallOptions
    from cnai.runtimes.kubernetes.operator import ClusterOptions

    try:  # the same rules as `cnai k8s install`
        InstallOptions(admission=admission, queue=queue)
    except ValueError as exc:
        field, _, rule = str(exc).partition(": ")
        raise fail(f"--{field}: {rule}") from None
    return ClusterOptions.from_environment(
        kubeconfig=kubeconfig,
        context=context,
        admission=admission,
        queue=queue,
        shared_gpu_resource=shared_gpu,
    )


def _dashboard_line(options: PlatformOptions) -> str:
    """Where the dashboard is, and where its sign-in token is (not the token itself:
    the console may be logged or shared)."""
    config = options.config_path or options.home / "config.yaml"
    return f"dashboard: {options.url}/ (sign in with the token in {config})"


def _up_foreground(options: PlatformOptions, quickstart_dir: Path | None) -> None:
    from cnai.platform import PlatformError, run_platform

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("httpx", "httpcore", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    def on_ready() -> None:
        err_console.print(
            f"cnai {__version__} is serving at {options.url} "
            f"(state in {options.home}); press Ctrl-C to stop"
        )
        err_console.print(_dashboard_line(options))
        if quickstart_dir is not None:
            from cnai.cli.quickstart import run_quickstart

            ok = run_quickstart(options.home / "config.yaml", quickstart_dir)
            if not ok:
                os.kill(os.getpid(), signal.SIGTERM)

    try:
        run_platform(options, on_ready)
    except PlatformError as exc:
        raise fail(str(exc)) from None


def _up_detached(options: PlatformOptions, quickstart_dir: Path | None) -> None:
    logs = options.home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / "platform.log"
    cmd = [
        sys.executable,
        "-m",
        "cnai",
        "up",
        "--host",
        options.host,
        "--port",
        str(options.port),
        "--durability",
        options.durability,
        "--watch-history",
        str(options.watch_history),
    ]
    if options.ray_address is not None:
        cmd += ["--runtime", "ray", "--ray-address", options.ray_address]
    if options.advertise_url:
        cmd += ["--advertise-url", options.advertise_url]
    with open(log_path, "ab") as log_file:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = options.url
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace").splitlines()[-10:]
            raise fail("the platform exited during start:\n" + "\n".join(tail))
        if _ready(url):
            break
        time.sleep(0.1)
    else:
        proc.terminate()
        raise fail(f"the platform was not ready after {READY_TIMEOUT_S:.0f}s; see {log_path}")
    err_console.print(
        f"cnai {__version__} is running at {url} (pid {proc.pid}); "
        f"logs in {log_path}; stop it with `cnai down`"
    )
    err_console.print(_dashboard_line(options))
    if quickstart_dir is not None:
        from cnai.cli.quickstart import run_quickstart

        if not run_quickstart(options.home / "config.yaml", quickstart_dir):
            raise typer.Exit(1)


def down() -> None:
    """Stop the platform started by `cnai up` (SIGTERM, then SIGKILL after a grace period)."""
    home = cnai_home()
    running = _running(home)
    if not running:
        err_console.print("cnai is not running")
        return
    pid, url = running
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.1)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)
        err_console.print(f"cnai (pid {pid}) did not stop in {STOP_TIMEOUT_S:.0f}s; killed it")
    else:
        err_console.print(f"stopped cnai at {url} (pid {pid})")


def version() -> None:
    """Print the client version and, when reachable, the server's."""
    typer.echo(f"Client Version: {__version__}")
    try:
        from cnai.core.client import Client

        with Client(timeout=3.0) as client:
            typer.echo(f"Server Version: {client.version()['version']}")
    except Exception as exc:
        typer.echo(f"Server Version: unavailable ({exc})")

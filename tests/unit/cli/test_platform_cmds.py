"""`cnai down` waits for the platform's process: a zombie must count as stopped; `cnai up`
refuses store and runtime flags it cannot honour, naming the flag."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from cnai.cli import platform_cmds
from cnai.cli.errors import run_cli
from cnai.cli.main import app
from cnai.cli.platform_cmds import _alive
from cnai.platform import PlatformOptions


def test_a_running_process_is_alive() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert _alive(proc.pid)
    finally:
        proc.kill()
        proc.wait()


def test_an_exited_but_unreaped_process_is_not_alive() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    # Not reaped by us (no wait yet): it stays a zombie, which kill(pid, 0) still finds.
    while _alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not _alive(proc.pid)
    proc.wait()
    assert not _alive(proc.pid)


# -- `cnai up --runtime ray`: flags checked before anything starts ----------------------


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[PlatformOptions]:
    """What `cnai up` would have started: the options it reached the platform with."""
    monkeypatch.setenv("CNAI_HOME", str(tmp_path))
    seen: list[PlatformOptions] = []
    monkeypatch.setattr(
        platform_cmds, "_up_foreground", lambda options, quick: seen.append(options)
    )
    return seen


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ["--runtime", "foo"],
            "--runtime: must be one of local, kubernetes, ray",
            id="unknown-runtime",
        ),
        pytest.param(
            ["--store", "etcd"], "--store: must be one of sqlite, kubernetes", id="unknown-store"
        ),
        pytest.param(
            ["--ray-address", "ray://head:10001"],
            "--ray-address: only with --runtime ray",
            id="ray-address-without-ray-runtime",
        ),
        pytest.param(
            ["--runtime", "ray", "--store", "kubernetes"],
            "--runtime ray: runs with --store sqlite only",
            id="ray-with-the-kubernetes-store-is-not-supported-yet",
        ),
        pytest.param(
            ["--runtime", "ray", "--ray-address", "http://head"],
            "--ray-address: 'http://head' is not ray://HOST:PORT, HOST:PORT or auto",
            id="ray-address-that-is-not-one",
        ),
    ],
)
def test_up_refuses_flags_it_cannot_honour_naming_the_flag(
    started: list[PlatformOptions],
    args: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run_cli(app, ["up", *args]) == 1
    assert message in " ".join(capsys.readouterr().err.split())
    assert started == []


@pytest.mark.parametrize(
    ("args", "address"),
    [
        pytest.param(["--runtime", "ray"], "auto", id="no-address-is-a-head-here"),
        pytest.param(
            ["--runtime", "ray", "--ray-address", "ray://h:10001"], "ray://h:10001", id="client"
        ),
        pytest.param(
            ["--runtime", "ray", "--ray-address", "10.0.0.5:6379"], "10.0.0.5:6379", id="gcs"
        ),
        pytest.param([], None, id="local-is-not-ray"),
    ],
)
def test_up_with_the_ray_runtime_passes_the_address_on(
    started: list[PlatformOptions], args: list[str], address: str | None
) -> None:
    assert run_cli(app, ["up", *args]) == 0
    assert [(o.ray_address, o.cluster) for o in started] == [(address, None)]


def test_the_cli_never_imports_ray() -> None:
    code = "import sys; from cnai.cli.main import app; print('ray' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def _platform_section(home: Path, section: object) -> None:
    (home / "config.yaml").write_text(yaml.safe_dump({"platform": section}))


def test_up_takes_the_engine_from_the_config_files_platform_section(
    started: list[PlatformOptions], tmp_path: Path
) -> None:
    _platform_section(
        tmp_path,
        {"runtime": "ray", "rayAddress": "ray://h:10001", "advertiseUrl": "http://10.0.0.2:8470"},
    )
    assert run_cli(app, ["up"]) == 0
    assert run_cli(app, ["up", "--ray-address", "10.0.0.5:6379"]) == 0  # a flag wins
    assert [(o.ray_address, o.advertise_url) for o in started] == [
        ("ray://h:10001", "http://10.0.0.2:8470"),
        ("10.0.0.5:6379", "http://10.0.0.2:8470"),
    ]
    # cnai up rewrites the file's contexts; the platform section is the user's, kept.
    from cnai.core.config import ClientConfig, platform_settings, write_config

    write_config(tmp_path / "config.yaml", ClientConfig(server="http://127.0.0.1:1", token="t"))
    assert platform_settings(tmp_path / "config.yaml")["runtime"] == "ray"


def test_an_unknown_platform_setting_is_refused_naming_it(
    started: list[PlatformOptions], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _platform_section(tmp_path, {"runtime": "ray", "rayAdress": "ray://h:10001"})
    assert run_cli(app, ["up"]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "platform.rayAdress: unknown setting" in err
    assert "rayAddress" in err
    assert started == []

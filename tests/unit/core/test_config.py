"""The client config file: written 0600, contexts, environment overrides, clear errors."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from cnai.core.config import (
    ClientConfig,
    ConfigError,
    cnai_home,
    config_path,
    load_config,
    write_config,
)

ENV = ("CNAI_HOME", "CNAI_CONFIG", "CNAI_SERVER", "CNAI_TOKEN", "CNAI_NAMESPACE", "CNAI_CONTEXT")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_write_config_creates_a_0600_file_that_loads_back(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "config.yaml"
    write_config(path, ClientConfig(server="http://127.0.0.1:8470/", token="cnai_x_y"))
    assert mode(path) == 0o600
    loaded = load_config(path)
    assert loaded == ClientConfig(server="http://127.0.0.1:8470", token="cnai_x_y")
    assert not path.with_suffix(".tmp").exists()


def test_write_config_tightens_an_existing_world_readable_file(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("contexts: []\n")
    os.chmod(path, 0o644)
    write_config(path, ClientConfig(server="http://a", token="t"))
    assert mode(path) == 0o600


def test_write_config_replaces_its_context_and_keeps_others(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    write_config(path, ClientConfig(server="http://a", token="t1", name="local"))
    write_config(path, ClientConfig(server="http://b", token="t2", namespace="ml", name="remote"))
    write_config(path, ClientConfig(server="http://c", token="t3", name="local"))
    assert load_config(path) == ClientConfig(server="http://c", token="t3", name="local")
    assert load_config(path, context="remote") == ClientConfig(
        server="http://b", token="t2", namespace="ml", name="remote"
    )


def test_context_can_be_chosen_by_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "config.yaml"
    write_config(path, ClientConfig(server="http://b", name="remote"))
    write_config(path, ClientConfig(server="http://a", name="local"))
    monkeypatch.setenv("CNAI_CONTEXT", "remote")
    assert load_config(path).server == "http://b"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        pytest.param({}, ClientConfig("http://file", "file-token", "team-a"), id="file-only"),
        pytest.param(
            {"CNAI_SERVER": "http://env:1/"},
            ClientConfig("http://env:1", "file-token", "team-a"),
            id="server-override",
        ),
        pytest.param(
            {"CNAI_TOKEN": "env-token"},
            ClientConfig("http://file", "env-token", "team-a"),
            id="token-override",
        ),
        pytest.param(
            {"CNAI_NAMESPACE": "team-b"},
            ClientConfig("http://file", "file-token", "team-b"),
            id="namespace-override",
        ),
        pytest.param(
            {"CNAI_SERVER": "http://env", "CNAI_TOKEN": "t", "CNAI_NAMESPACE": "n"},
            ClientConfig("http://env", "t", "n"),
            id="all-overrides",
        ),
    ],
)
def test_environment_overrides_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: ClientConfig
) -> None:
    path = tmp_path / "config.yaml"
    write_config(path, ClientConfig("http://file", "file-token", "team-a"))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert load_config(path) == expected


def test_environment_alone_is_enough(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNAI_SERVER", "http://env")
    monkeypatch.setenv("CNAI_TOKEN", "t")
    assert load_config(tmp_path / "missing.yaml") == ClientConfig("http://env", "t", "default")


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(None, id="missing-file"),
        pytest.param("", id="empty-file"),
        pytest.param("- just\n- a list\n", id="not-a-mapping"),
        pytest.param("current-context: gone\ncontexts: []\n", id="unknown-context"),
    ],
)
def test_missing_server_explains_how_to_fix_it(tmp_path: Path, content: str | None) -> None:
    path = tmp_path / "config.yaml"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message
    assert "cnai up" in message
    assert "CNAI_SERVER" in message


def test_unreadable_config_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("contexts: [unclosed\n")
    with pytest.raises(ConfigError, match=f"cannot read {path}"):
        load_config(path)


def test_paths_follow_cnai_home_and_cnai_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CNAI_HOME", str(tmp_path / "home"))
    assert cnai_home() == tmp_path / "home"
    assert config_path() == tmp_path / "home" / "config.yaml"
    monkeypatch.setenv("CNAI_CONFIG", str(tmp_path / "elsewhere.yaml"))
    assert config_path() == tmp_path / "elsewhere.yaml"


def test_default_home_is_under_the_user_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/someone")
    assert cnai_home() == Path("/home/someone/.cnai")

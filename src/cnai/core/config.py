"""Where state and credentials live: ``CNAI_HOME`` and the kubeconfig-like config file.

The config file (``$CNAI_HOME/config.yaml``, or ``$CNAI_CONFIG``) holds contexts of
server URL, token and default namespace, written with mode 0600. ``CNAI_SERVER``,
``CNAI_TOKEN`` and ``CNAI_NAMESPACE`` override it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_PORT = 8470
DEFAULT_HOST = "127.0.0.1"


def cnai_home() -> Path:
    return Path(os.environ.get("CNAI_HOME", "~/.cnai")).expanduser()


def config_path() -> Path:
    explicit = os.environ.get("CNAI_CONFIG")
    return Path(explicit).expanduser() if explicit else cnai_home() / "config.yaml"


@dataclass(frozen=True)
class ClientConfig:
    """One context: where the API server is and how to authenticate to it."""

    server: str
    token: str | None = None
    namespace: str = "default"
    name: str = "local"


class ConfigError(Exception):
    """The config file is missing or unreadable; the message says how to fix it."""


def _read(path: Path) -> dict[str, Any]:
    import yaml  # here, not at the top: workloads import this module, rarely the parser

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        return {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    return data if isinstance(data, dict) else {}


def load_config(path: Path | None = None, context: str | None = None) -> ClientConfig:
    """The selected context of the config file, with environment overrides applied."""
    path = path or config_path()
    data = _read(path)
    wanted = context or os.environ.get("CNAI_CONTEXT") or data.get("current-context")
    ctx: dict[str, Any] = {}
    for entry in data.get("contexts") or []:
        if isinstance(entry, dict) and entry.get("name") == wanted:
            ctx = dict(entry.get("context") or {})
            break
    server = os.environ.get("CNAI_SERVER") or ctx.get("server")
    if not server:
        raise ConfigError(
            f"no cnai server configured in {path}; start one with `cnai up` "
            "or set CNAI_SERVER and CNAI_TOKEN"
        )
    return ClientConfig(
        server=str(server).rstrip("/"),
        token=os.environ.get("CNAI_TOKEN") or ctx.get("token"),
        namespace=os.environ.get("CNAI_NAMESPACE") or ctx.get("namespace") or "default",
        name=str(wanted or "local"),
    )


PLATFORM_SECTION = "platform"
# `cnai up` settings the config file may hold (camelCase, as manifests are).
PLATFORM_KEYS = ("store", "runtime", "rayAddress", "advertiseUrl")


def platform_settings(path: Path | None = None) -> dict[str, str]:
    """The ``platform:`` section of the config file: defaults for `cnai up`'s engine
    flags (``runtime: ray``, ``rayAddress: ray://head:10001``); flags win over it."""
    path = path or config_path()
    section = _read(path).get(PLATFORM_SECTION) or {}
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: {PLATFORM_SECTION}: must be a mapping of settings")
    unknown = sorted(set(section) - set(PLATFORM_KEYS))
    if unknown:
        raise ConfigError(
            f"{path}: {PLATFORM_SECTION}.{unknown[0]}: unknown setting; "
            f"use {', '.join(PLATFORM_KEYS)}"
        )
    return {k: str(v) for k, v in section.items() if v is not None}


def write_config(path: Path, cfg: ClientConfig) -> None:
    """Add or replace ``cfg``'s context, make it current, and write the file as 0600."""
    data = _read(path)
    contexts = [
        c for c in (data.get("contexts") or []) if isinstance(c, dict) and c.get("name") != cfg.name
    ]
    contexts.append(
        {
            "name": cfg.name,
            "context": {"server": cfg.server, "token": cfg.token, "namespace": cfg.namespace},
        }
    )
    out: dict[str, Any] = {
        "apiVersion": "cnai.io/v1alpha1",
        "kind": "Config",
        "current-context": cfg.name,
        "contexts": contexts,
    }
    if isinstance(data.get(PLATFORM_SECTION), dict):
        out[PLATFORM_SECTION] = data[PLATFORM_SECTION]  # the user's; cnai up never writes it
    import yaml

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        yaml.safe_dump(out, fh, sort_keys=False)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)

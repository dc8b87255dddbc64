"""The package's public surface (cnai/__init__.py): ``import cnai`` stays light, and the
clients load on first use."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

import cnai

HEAVY = {"httpx", "pydantic", "yaml", "rich"}


def _run(script: str) -> dict[str, list[str]]:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    found: dict[str, list[str]] = json.loads(done.stdout)
    return found


def test_import_cnai_loads_no_heavy_library_and_the_clients_load_on_use() -> None:
    found = _run(
        """
        import json, sys
        import cnai
        after_import = sorted(sys.modules)
        from cnai import AsyncClient, Client
        print(json.dumps({
            "after_import": after_import,
            "clients": [Client.__module__, AsyncClient.__module__],
        }))
        """
    )
    assert not {name.split(".")[0] for name in found["after_import"]} & HEAVY
    assert "cnai.core.client" not in found["after_import"]
    assert found["clients"] == ["cnai.core.client", "cnai.core.client"]


def test_every_public_name_resolves() -> None:
    from cnai.core.client import AsyncClient, Client

    assert cnai.Client is Client
    assert cnai.AsyncClient is AsyncClient
    assert all(hasattr(cnai, name) for name in cnai.__all__)
    assert set(cnai.__all__) <= set(dir(cnai))


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Clint'"):
        _ = cnai.Clint  # type: ignore[attr-defined]

"""The quickstart `make up` runs: apply examples/quickstart and prove it took effect."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from cnai.core.client import Client
from cnai.core.errors import ApiError
from cnai.core.manifests import load_path

console = Console(stderr=True, highlight=False)


def run_quickstart(config_path: Path, directory: Path) -> bool:
    """Apply every manifest in ``directory``, read each back, print a summary."""
    try:
        with Client(config_path=config_path) as client:
            docs = load_path(directory)
            console.print(f"quickstart: applying {len(docs)} objects from {directory}")
            for doc in docs:
                result = client.apply(doc)
                obj = result.object
                where = f" -n {obj.metadata.namespace}" if obj.metadata.namespace else ""
                console.print(f"  {obj.kind.lower()}/{obj.metadata.name}{where} {result.action}")
            for doc in docs:
                meta = doc.get("metadata") or {}
                client.get(str(doc["kind"]), str(meta["name"]), meta.get("namespace"))
    except ApiError as exc:
        console.print(f"[red]quickstart failed:[/red] {exc.message}")
        return False
    console.print(
        f"[green]quickstart succeeded[/green]: {len(docs)} objects applied and read "
        "back. Try `cnai get namespaces` and `cnai get secrets -n quickstart`."
    )
    return True

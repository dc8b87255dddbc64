"""Reading manifests: multi-document YAML or JSON, from text, files, directories or stdin.

YAML aliases are refused: with them a few kilobytes can expand to gigabytes (the
"billion laughs"), and manifests never need them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from cnai.core.errors import BadRequest

_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _NoAliasLoader(yaml.SafeLoader):
    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None, None, "YAML aliases (*name) are not allowed", event.start_mark
            )
        return super().compose_node(parent, index)


def parse_documents(
    text: str, source: str = "<input>", *, expand_lists: bool = True
) -> list[dict[str, Any]]:
    """Every non-empty document in ``text``; BadRequest names the source and line.

    With ``expand_lists``, a ``kind: ...List`` document stands for its items (as in
    ``kubectl get -o yaml`` output); the API server turns it off, since one request
    carries one object.
    """
    try:
        docs = list(yaml.load_all(text, Loader=_NoAliasLoader))
    except RecursionError:
        raise BadRequest(f"{source}: malformed YAML: nested too deeply") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise BadRequest(f"{source}: malformed YAML{where}: {problem}") from None
    out: list[dict[str, Any]] = []
    for index, doc in enumerate(docs):
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise BadRequest(f"{source}: document {index + 1} is not a mapping (an object)")
        kind = doc.get("kind")
        if (
            expand_lists
            and isinstance(kind, str)
            and kind.endswith("List")
            and isinstance(doc.get("items"), list)
        ):
            out.extend(i for i in doc["items"] if isinstance(i, dict))
        else:
            out.append(doc)
    return out


def manifest_files(path: Path) -> Iterator[Path]:
    """A file, or the YAML/JSON files of a directory in name order."""
    if path.is_dir():
        for child in sorted(path.iterdir()):
            if child.suffix in (".yaml", ".yml", ".json") and child.is_file():
                yield child
    elif path.exists():
        yield path
    else:
        raise BadRequest(f"{path}: no such file or directory")


def load_path(path: Path) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for file in manifest_files(path):
        docs.extend(parse_documents(file.read_text(encoding="utf-8"), str(file)))
    return docs


def dump_yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True)

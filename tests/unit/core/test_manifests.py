"""Reading manifests: documents, List expansion, errors with source and line, no aliases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cnai.core.errors import BadRequest
from cnai.core.manifests import dump_yaml, load_path, manifest_files, parse_documents


def names(docs: list[dict[str, object]]) -> list[object]:
    return [d.get("metadata", {}).get("name") for d in docs]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("kind: Secret\nmetadata: {name: a}\n", ["a"], id="one-document"),
        pytest.param(
            "metadata: {name: a}\n---\nmetadata: {name: b}\n", ["a", "b"], id="two-documents"
        ),
        pytest.param(
            "---\n---\nmetadata: {name: a}\n---\n# only a comment\n---\n", ["a"], id="empty-docs"
        ),
        pytest.param("", [], id="empty-text"),
        pytest.param(
            json.dumps({"kind": "Secret", "metadata": {"name": "j"}}), ["j"], id="json-text"
        ),
        pytest.param(
            "kind: SecretList\nitems:\n- metadata: {name: a}\n- metadata: {name: b}\n",
            ["a", "b"],
            id="list-kind-is-expanded",
        ),
        pytest.param(
            "kind: List\nitems:\n- metadata: {name: a}\n- just-a-string\n"
            "---\nmetadata: {name: c}\n",
            ["a", "c"],
            id="list-items-that-are-not-objects-are-skipped",
        ),
        pytest.param(
            "kind: List\nitems: not-a-list\nmetadata: {name: l}\n",
            ["l"],
            id="list-kind-without-items-array-is-kept-as-is",
        ),
        pytest.param(
            "kind:\nmetadata: {name: n}\n", ["n"], id="empty-kind-is-passed-on-to-admission"
        ),
        pytest.param(
            "kind: 7\nmetadata: {name: n}\n", ["n"], id="non-string-kind-is-passed-on-to-admission"
        ),
        pytest.param("a: &anchor 1\nmetadata: {name: x}\n", ["x"], id="anchor-without-alias-ok"),
    ],
)
def test_parse_documents(text: str, expected: list[str]) -> None:
    assert names(parse_documents(text)) == expected


def test_malformed_yaml_names_source_and_line() -> None:
    text = "kind: Secret\nmetadata:\n  name: a\n  labels: [unclosed\n"
    with pytest.raises(BadRequest) as info:
        parse_documents(text, "job.yaml")
    message = info.value.message
    assert message.startswith("job.yaml: malformed YAML at line ")
    assert "line 5" in message or "line 4" in message


def test_malformed_yaml_reports_the_exact_line() -> None:
    text = "a: 1\nb: 2\nc: : :\n"
    with pytest.raises(BadRequest, match=r"src: malformed YAML at line 3, column \d+"):
        parse_documents(text, "src")


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("a: &x 1\nb: *x\n", id="scalar-alias"),
        pytest.param('a: &a ["x","x"]\nb: &b [*a,*a]\nc: &c [*b,*b]\n', id="billion-laughs-style"),
        pytest.param("base: &b {k: v}\nother:\n  <<: *b\n", id="merge-key-alias"),
    ],
)
def test_yaml_aliases_are_refused(text: str) -> None:
    with pytest.raises(BadRequest, match=r"in\.yaml: malformed YAML at line \d+.*aliases"):
        parse_documents(text, "in.yaml")


@pytest.mark.parametrize(
    ("text", "which"),
    [
        pytest.param("- a\n- b\n", 1, id="list-document"),
        pytest.param("metadata: {name: a}\n---\njust text\n", 2, id="scalar-second-document"),
        pytest.param("---\n---\n42\n", 2, id="numbering-counts-empty-documents"),
    ],
)
def test_non_mapping_documents_are_refused(text: str, which: int) -> None:
    with pytest.raises(BadRequest, match=f"f.yaml: document {which} is not a mapping"):
        parse_documents(text, "f.yaml")


def test_directory_files_load_in_name_order(tmp_path: Path) -> None:
    (tmp_path / "20-b.yaml").write_text("metadata: {name: b}\n")
    (tmp_path / "10-a.yml").write_text("metadata: {name: a1}\n---\nmetadata: {name: a2}\n")
    (tmp_path / "30-c.json").write_text(json.dumps({"metadata": {"name": "c"}}))
    (tmp_path / "README.md").write_text("metadata: {name: not-a-manifest}\n")
    (tmp_path / "nested.yaml").mkdir()  # a directory named like a manifest is skipped
    assert [p.name for p in manifest_files(tmp_path)] == ["10-a.yml", "20-b.yaml", "30-c.json"]
    assert names(load_path(tmp_path)) == ["a1", "a2", "b", "c"]


def test_single_file_of_any_name_loads(tmp_path: Path) -> None:
    path = tmp_path / "manifest.txt"
    path.write_text("metadata: {name: x}\n")
    assert names(load_path(path)) == ["x"]


def test_errors_from_a_directory_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("metadata: {name: a}\n")
    (tmp_path / "b.yaml").write_text("metadata: [\n")
    with pytest.raises(BadRequest, match=r"b\.yaml: malformed YAML"):
        load_path(tmp_path)


def test_missing_path_is_reported(tmp_path: Path) -> None:
    with pytest.raises(BadRequest, match="no such file or directory"):
        load_path(tmp_path / "nope.yaml")


def test_dump_yaml_round_trips_and_keeps_key_order() -> None:
    data = {"kind": "Secret", "metadata": {"name": "é"}, "a": [1, 2]}
    text = dump_yaml(data)
    assert text.index("kind") < text.index("metadata")
    assert "é" in text
    assert parse_documents(text) == [data]

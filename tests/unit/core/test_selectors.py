"""Label selectors (Kubernetes syntax) and field selectors on dotted paths."""

from __future__ import annotations

from typing import Any

import pytest

from cnai.core.errors import BadRequest
from cnai.core.selectors import FieldSelector, LabelSelector, Requirement, get_path

WEB = {"app": "web", "tier": "frontend"}
DB = {"app": "db", "tier": "backend"}
BARE: dict[str, str] = {}


@pytest.mark.parametrize(
    ("text", "requirements"),
    [
        pytest.param("", (), id="empty-text-is-the-empty-selector"),
        pytest.param("app=web", (Requirement("app", "=", frozenset({"web"})),), id="equals"),
        pytest.param("app==web", (Requirement("app", "=", frozenset({"web"})),), id="double-eq"),
        pytest.param("app!=web", (Requirement("app", "!=", frozenset({"web"})),), id="not-equal"),
        pytest.param(
            "app in (web, db)",
            (Requirement("app", "in", frozenset({"web", "db"})),),
            id="in-set-with-spaces",
        ),
        pytest.param(
            "app notin (db)", (Requirement("app", "notin", frozenset({"db"})),), id="notin-set"
        ),
        pytest.param("gpu", (Requirement("gpu", "exists"),), id="bare-key-means-exists"),
        pytest.param("!gpu", (Requirement("gpu", "!exists"),), id="bang-key-means-not-exists"),
        pytest.param(
            "cnai.io/queue=q1, tier != db ,!gpu",
            (
                Requirement("cnai.io/queue", "=", frozenset({"q1"})),
                Requirement("tier", "!=", frozenset({"db"})),
                Requirement("gpu", "!exists"),
            ),
            id="comma-joined-terms-with-prefixed-key-and-spaces",
        ),
    ],
)
def test_label_selector_parses(text: str, requirements: tuple[Requirement, ...]) -> None:
    assert LabelSelector.parse(text).requirements == requirements


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("app in web", id="in-without-parentheses"),
        pytest.param("app in (web", id="unclosed-parenthesis"),
        pytest.param("=web", id="missing-key"),
        pytest.param("app=web=x", id="two-equals"),
        pytest.param("app,,tier", id="empty-term"),
        pytest.param("app web", id="two-words"),
    ],
)
def test_label_selector_parse_errors_name_the_bad_part(text: str) -> None:
    with pytest.raises(BadRequest, match="labelSelector: cannot parse"):
        LabelSelector.parse(text)


@pytest.mark.parametrize(
    ("text", "labels", "matches"),
    [
        pytest.param("", WEB, True, id="empty-selector-matches-everything"),
        pytest.param("app=web", WEB, True, id="equals-matches-same-value"),
        pytest.param("app=web", DB, False, id="equals-rejects-other-value"),
        pytest.param("app=web", BARE, False, id="equals-rejects-missing-key"),
        pytest.param("app==web", WEB, True, id="double-equals-matches"),
        pytest.param("app!=web", DB, True, id="not-equal-matches-other-value"),
        pytest.param("app!=web", WEB, False, id="not-equal-rejects-same-value"),
        pytest.param("app!=web", BARE, True, id="not-equal-matches-missing-key"),
        pytest.param("app in (web,db)", DB, True, id="in-matches-member"),
        pytest.param("app in (web)", DB, False, id="in-rejects-non-member"),
        pytest.param("app in (web)", BARE, False, id="in-rejects-missing-key"),
        pytest.param("app notin (web)", DB, True, id="notin-matches-non-member"),
        pytest.param("app notin (web,db)", DB, False, id="notin-rejects-member"),
        pytest.param("app notin (web)", BARE, True, id="notin-matches-missing-key"),
        pytest.param("tier", WEB, True, id="exists-matches-present-key"),
        pytest.param("tier", BARE, False, id="exists-rejects-missing-key"),
        pytest.param("!tier", BARE, True, id="not-exists-matches-missing-key"),
        pytest.param("!tier", WEB, False, id="not-exists-rejects-present-key"),
        pytest.param("app=web,tier=backend", WEB, False, id="all-terms-must-hold"),
        pytest.param("app=web,tier=frontend", WEB, True, id="all-terms-hold"),
    ],
)
def test_label_selector_matches(text: str, labels: dict[str, str], matches: bool) -> None:
    assert LabelSelector.parse(text).matches(labels) is matches


def test_from_dict_requires_every_pair() -> None:
    selector = LabelSelector.from_dict({"app": "web", "tier": "frontend"})
    assert selector.matches(WEB)
    assert not selector.matches({"app": "web"})


def test_get_path_follows_mappings_and_stops_at_scalars() -> None:
    obj = {"metadata": {"name": "x"}, "spec": {"replicas": 2}}
    assert get_path(obj, "metadata.name") == "x"
    assert get_path(obj, "spec.replicas") == 2
    assert get_path(obj, "spec.replicas.deep") is None
    assert get_path(obj, "status.phase") is None


POD_EVENT: dict[str, Any] = {
    "metadata": {"name": "ev1", "namespace": "default"},
    "involvedObject": {"kind": "Pod", "name": "p1"},
    "count": 3,
}


@pytest.mark.parametrize(
    ("text", "matches"),
    [
        pytest.param("", True, id="empty-matches-everything"),
        pytest.param("metadata.name=ev1", True, id="equals-on-name"),
        pytest.param("metadata.name==ev1", True, id="double-equals-on-name"),
        pytest.param("metadata.name=ev2", False, id="equals-other-name"),
        pytest.param("involvedObject.kind!=Pod", False, id="not-equal-same-value"),
        pytest.param("involvedObject.kind!=Job", True, id="not-equal-other-value"),
        pytest.param("count=3", True, id="non-string-values-compare-as-text"),
        pytest.param("status.phase=", True, id="missing-field-equals-empty"),
        pytest.param("status.phase=Running", False, id="missing-field-is-not-a-value"),
        pytest.param("metadata.name=ev1,involvedObject.name=p2", False, id="all-terms-must-hold"),
        pytest.param(
            " metadata.namespace = default , involvedObject.name=p1 ", True, id="spaces-ok"
        ),
    ],
)
def test_field_selector_matches(text: str, matches: bool) -> None:
    assert FieldSelector.parse(text).matches(POD_EVENT) is matches


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("metadata.name", id="no-operator"),
        pytest.param("metadata.name in (a)", id="set-operator-unsupported"),
        pytest.param("metadata/name=x", id="slash-in-path"),
        pytest.param("a=b,,c=d", id="empty-term"),
    ],
)
def test_field_selector_parse_errors(text: str) -> None:
    with pytest.raises(BadRequest, match="fieldSelector: cannot parse"):
        FieldSelector.parse(text)


def test_field_selector_value_of_reports_only_pinned_equalities() -> None:
    selector = FieldSelector.parse("metadata.name=ev1,involvedObject.kind!=Pod")
    assert selector.value_of("metadata.name") == "ev1"
    assert selector.value_of("involvedObject.kind") is None
    assert selector.value_of("metadata.namespace") is None

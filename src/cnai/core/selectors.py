"""Label and field selectors with Kubernetes syntax.

Labels: ``a=b``, ``a==b``, ``a!=b``, ``a in (x,y)``, ``a notin (x)``, ``a``, ``!a``,
joined by commas (all must hold). Fields: ``path=value`` / ``path!=value`` on dotted
paths such as ``metadata.name`` or ``involvedObject.uid``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cnai.core.errors import BadRequest

_TERM = re.compile(
    r"""\s*(?:
        (?P<not>!)\s*(?P<nkey>[^\s,!=()]+)                                  # !key
      | (?P<skey>[^\s,!=()]+)\s+(?P<op>in|notin)\s*\((?P<vals>[^)]*)\)    # key in (a,b)
      | (?P<ekey>[^\s,!=()]+)\s*(?P<eop>==|=|!=)\s*(?P<val>[^\s,!=()]*)   # key=value
      | (?P<xkey>[^\s,!=()]+)                                              # key
    )\s*(?:,|$)""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class Requirement:
    """One term of a label selector."""

    key: str
    op: str  # one of: =, !=, in, notin, exists, !exists
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.op == "exists":
            return present
        if self.op == "!exists":
            return not present
        if self.op in ("=", "in"):
            return present and labels[self.key] in self.values
        # != and notin also match objects without the key, as in Kubernetes.
        return not present or labels[self.key] not in self.values


@dataclass(frozen=True)
class LabelSelector:
    """A conjunction of requirements; the empty selector matches everything."""

    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(r.matches(labels) for r in self.requirements)

    @classmethod
    def parse(cls, text: str | None) -> LabelSelector:
        """Parse selector text; raise :class:`BadRequest` naming the bad part."""
        text = (text or "").strip()
        if not text:
            return cls()
        reqs: list[Requirement] = []
        pos = 0
        while pos < len(text):
            m = _TERM.match(text, pos)
            if not m or m.end() == pos:
                raise BadRequest(f"labelSelector: cannot parse {text[pos:]!r}")
            reqs.append(_requirement(m))
            pos = m.end()
        return cls(tuple(reqs))

    @classmethod
    def from_dict(cls, labels: Mapping[str, str]) -> LabelSelector:
        return cls(tuple(Requirement(k, "=", frozenset([v])) for k, v in labels.items()))


def _requirement(m: re.Match[str]) -> Requirement:
    if m["nkey"]:
        return Requirement(m["nkey"], "!exists")
    if m["skey"]:
        values = frozenset(v.strip() for v in m["vals"].split(",") if v.strip())
        return Requirement(m["skey"], m["op"], values)
    if m["ekey"]:
        op = "!=" if m["eop"] == "!=" else "="
        return Requirement(m["ekey"], op, frozenset([m["val"]]))
    return Requirement(m["xkey"], "exists")


def get_path(obj: Mapping[str, Any], path: str) -> Any:
    """Follow a dotted path through nested mappings; None when any step is missing."""
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(part)
    return cur


@dataclass(frozen=True)
class FieldSelector:
    """Equality terms on dotted field paths (``metadata.name=x,involvedObject.kind=Pod``)."""

    terms: tuple[tuple[str, bool, str], ...] = ()  # (path, equal, value)

    def matches(self, obj: Mapping[str, Any]) -> bool:
        for path, equal, value in self.terms:
            actual = get_path(obj, path)
            actual_s = "" if actual is None else str(actual)
            if (actual_s == value) != equal:
                return False
        return True

    @classmethod
    def parse(cls, text: str | None) -> FieldSelector:
        text = (text or "").strip()
        if not text:
            return cls()
        terms: list[tuple[str, bool, str]] = []
        for part in text.split(","):
            m = re.fullmatch(r"\s*([A-Za-z0-9_.]+)\s*(==|=|!=)\s*([^\s]*)\s*", part)
            if not m:
                raise BadRequest(f"fieldSelector: cannot parse {part!r}; use path=value")
            terms.append((m[1], m[2] != "!=", m[3]))
        return cls(tuple(terms))

    def value_of(self, path: str) -> str | None:
        """The value this selector requires for ``path``, if it pins one."""
        for p, equal, value in self.terms:
            if p == path and equal:
                return value
        return None

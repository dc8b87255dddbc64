"""The kind registry: how the kernel and each capability package declare their kinds.

A capability's ``register(platform)`` calls :meth:`Registry.register` with a
:class:`KindInfo`; the API server, the OpenAPI document, discovery and the CLI read
everything else from here, so the kernel never needs to know which capabilities exist.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from cnai.core.errors import FieldError
from cnai.core.meta import Resource
from cnai.version import GROUP_VERSION

# A defaulter mutates the typed object in place before validation; ``old`` is the
# stored object on update and None on create.
Defaulter = Callable[[Any, Any | None], None]
# A validator returns every rule the object breaks, each naming its field path.
Validator = Callable[[Any, Any | None], list[FieldError]]
# Whether an object exists: (plural, namespace, name) -> bool.
Lookup = Callable[[str, str | None, str], Awaitable[bool]]
# A reference check is a validator that may look other objects up (a queue the object
# names must exist); it runs after the validators, on create and on spec updates.
ReferenceCheck = Callable[[Any, Any | None, Lookup], Awaitable[list[FieldError]]]


@dataclass(frozen=True)
class Column:
    """A printer column: a header and a dotted path into the object (``status.phase``)."""

    name: str
    path: str
    wide: bool = False
    type: str = "string"


@dataclass(frozen=True)
class KindInfo:
    """Everything the platform needs to serve one kind."""

    model: type[Resource]
    columns: tuple[Column, ...] = ()
    defaulters: tuple[Defaulter, ...] = ()
    validators: tuple[Validator, ...] = ()
    reference_checks: tuple[ReferenceCheck, ...] = ()
    has_status: bool = True
    verbs: tuple[str, ...] = ("create", "get", "list", "watch", "update", "patch", "delete")

    @property
    def kind(self) -> str:
        return self.model.KIND

    @property
    def plural(self) -> str:
        return self.model.PLURAL

    @property
    def singular(self) -> str:
        return self.model.KIND.lower()

    @property
    def short_names(self) -> tuple[str, ...]:
        return self.model.SHORT_NAMES

    @property
    def namespaced(self) -> bool:
        return self.model.NAMESPACED

    @property
    def api_version(self) -> str:
        return GROUP_VERSION

    def discovery(self) -> dict[str, Any]:
        """This kind as an entry of the discovery document (Kubernetes' APIResource)."""
        return {
            "name": self.plural,
            "singularName": self.singular,
            "kind": self.kind,
            "namespaced": self.namespaced,
            "shortNames": list(self.short_names),
            "verbs": list(self.verbs),
            "subresources": ["status"] if self.has_status else [],
            "columns": [
                {"name": c.name, "path": c.path, "wide": c.wide, "type": c.type}
                for c in self.columns
            ],
        }


@dataclass
class Registry:
    """Kinds by plural name, with lookup by kind, singular and short names."""

    _by_plural: dict[str, KindInfo] = field(default_factory=dict)
    _aliases: dict[str, str] = field(default_factory=dict)

    def register(self, info: KindInfo) -> None:
        if info.plural in self._by_plural:
            raise ValueError(f"kind {info.kind} ({info.plural}) is already registered")
        names = (info.plural, info.singular, info.kind.lower(), *info.short_names)
        for alias in names:
            owner = self._aliases.get(alias)
            if owner is not None and owner != info.plural:
                raise ValueError(f"name {alias!r} of {info.kind} is already used by {owner}")
        self._by_plural[info.plural] = info
        for alias in names:
            self._aliases[alias] = info.plural

    def by_plural(self, plural: str) -> KindInfo | None:
        return self._by_plural.get(plural)

    def by_kind(self, kind: str) -> KindInfo | None:
        return self.resolve(kind)

    def resolve(self, name: str) -> KindInfo | None:
        """Find a kind by plural, singular, kind or short name, case-insensitively."""
        plural = self._aliases.get(name.lower())
        return self._by_plural.get(plural) if plural else None

    def __iter__(self) -> Iterator[KindInfo]:
        return iter(self._by_plural.values())

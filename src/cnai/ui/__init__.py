"""The web dashboard (DESIGN.md section 4): static ES modules served by the platform at
``/`` and ``/ui/``, reading everything through the HTTP API with the user's token.

No Node.js build: the browser loads plain modules and the vendored Preact and htm
(``static/vendor/``). Pages live in ``static/pages/``; ``static/api.js`` is the API
client, ``static/live.js`` the list-then-watch loop that keeps pages current.
"""

from typing import Any as _Any


def register(platform: _Any) -> None:
    """Hand the platform the dashboard's routes; the dashboard has no kinds."""
    from cnai.ui.routes import route_factory

    factories: list[_Any] | None = getattr(platform, "route_factories", None)
    if factories is not None:
        factories.append(route_factory)

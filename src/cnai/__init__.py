"""cnai: a cloud-native AI platform with one declarative control plane.

The public SDK surface: ``cnai.Client`` and ``cnai.AsyncClient`` talk to a running
platform (``cnai up``) using the same config file as the ``cnai`` command.
"""

from cnai.core.client import AsyncClient, Client
from cnai.version import __version__

__all__ = ["AsyncClient", "Client", "__version__"]

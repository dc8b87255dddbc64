"""The platform's version, shared by the CLI, the server and the client."""

__version__ = "0.1.0"
API_GROUP = "cnai.io"
API_VERSION = "v1alpha1"
GROUP_VERSION = f"{API_GROUP}/{API_VERSION}"

"""The kernel: resource types, store, API server, auth, events and the kind registry.

The kernel imports no capability package; capabilities plug in through
:mod:`cnai.core.registry`.
"""

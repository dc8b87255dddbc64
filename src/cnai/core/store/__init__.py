"""Object storage: the Store protocol, its write strategy, and the SQLite implementation."""

from cnai.core.store.protocol import ObjectList, Store, WatchEvent, WatchEventType

__all__ = ["ObjectList", "Store", "WatchEvent", "WatchEventType"]

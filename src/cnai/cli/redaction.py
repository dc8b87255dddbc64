"""Keeping Secret values out of the CLI's output: the one gate every printer passes.

Tables, ``-o yaml``/``-o json``/``-o name``, watch rows and ``describe`` all call
:func:`present` on each object before rendering it, so a value can only reach the
terminal when the user asked for it with ``--reveal``.
"""

from __future__ import annotations

import base64
import binascii
import copy
from enum import StrEnum
from typing import Any

# Fields of a Secret that hold values (stringData is write-only, but a manifest or an
# older server could still carry it).
_VALUE_FIELDS = ("data", "stringData")


class Reveal(StrEnum):
    """How Secret values are shown: HIDDEN (default), STORED (base64) or DECODED (text)."""

    HIDDEN = "hidden"
    STORED = "stored"
    DECODED = "decoded"


def present(obj: dict[str, Any], reveal: Reveal = Reveal.HIDDEN) -> dict[str, Any]:
    """A copy of ``obj`` (an object or a List of them) safe to print under ``reveal``."""
    out = copy.deepcopy(obj)
    items = out.get("items")
    if isinstance(items, list):
        out["items"] = [present(i, reveal) if isinstance(i, dict) else i for i in items]
    if out.get("kind") != "Secret" or reveal is Reveal.STORED:
        return out
    for field in _VALUE_FIELDS:
        values = out.get(field)
        if isinstance(values, dict):
            encoded = field == "data"
            out[field] = {k: _shown(v, encoded, reveal) for k, v in values.items()}
    return out


def _shown(value: Any, encoded: bool, reveal: Reveal) -> str:
    raw = _raw_bytes(value, encoded)
    if reveal is Reveal.DECODED:
        return raw.decode("utf-8", "replace")
    return f"<redacted: {len(raw)} bytes>"


def _raw_bytes(value: Any, encoded: bool) -> bytes:
    text = str(value)
    if not encoded:
        return text.encode()
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        # Never echo a value back, even a malformed one: count its characters instead.
        return text.encode()

"""Resource quantities with Kubernetes syntax: cpu ``500m``/``2``, memory ``512Mi``/``1G``."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_SUFFIX = {
    "": Decimal(1),
    "m": Decimal("0.001"),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
}
_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$")


def parse_quantity(value: str | int | float) -> Decimal:
    """The quantity as a number of base units (cores, bytes, devices); ValueError if bad."""
    if isinstance(value, bool):
        raise ValueError("must be a quantity such as 500m, 2, 512Mi or 1Gi")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("must not be negative")
        return Decimal(str(value))
    m = _QUANTITY.match(value.strip())
    if not m:
        raise ValueError(f"{value!r} is not a quantity such as 500m, 2, 512Mi or 1Gi")
    try:
        return Decimal(m[1]) * _SUFFIX[m[2] or ""]
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a quantity") from None


def format_bytes(n: int) -> str:
    """Bytes as the largest whole binary unit (``512Mi``), for Node capacity."""
    for suffix, size in (("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if n >= size and n % size == 0:
            return f"{n // size}{suffix}"
    return str(n)

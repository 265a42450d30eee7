"""Disk sizes as people write them (``6G``, ``512M``, ``10GiB``, ``1.5T``, ``1073741824``).

Single-letter suffixes and ``KiB``..``PiB`` are binary, as qemu-img reads them: ``G`` is 2**30
bytes. ``KB``..``PB`` are decimal (``GB`` is 10**9 bytes), as in libvirt's ``unit`` attribute.
Units are case-insensitive. A size must come to whole bytes, be positive, be a multiple of the
512-byte sector (qemu rounds other sizes up, which would make a re-run look like a conflict) and
stay at most 1 EiB.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

SECTOR = 512
MAX_SIZE = 2**60

_UNITS: dict[str, int] = {"": 1, "b": 1}
for _power, _letter in enumerate("kmgtp", start=1):
    _UNITS[_letter] = 1024**_power
    _UNITS[f"{_letter}ib"] = 1024**_power
    _UNITS[f"{_letter}b"] = 1000**_power

_SIZE = re.compile(r"^\s*([+-]?\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")


def parse_size(value: object) -> int:
    """Bytes from an int or a size string; ``ValueError`` says which rule the value breaks."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("must be a number of bytes or a size string such as 6G, 512M, 10GiB")
    size = value if isinstance(value, int) else _parse_text(value)
    return check_size(size, str(value))


def check_size(size: int, shown: str) -> int:
    """``size`` when it obeys the rules above, else ``ValueError`` quoting ``shown``."""
    if size <= 0:
        raise ValueError(f"must be positive, got {shown}")
    if size % SECTOR:
        raise ValueError(f"must be a multiple of {SECTOR} bytes, got {shown} = {size} bytes")
    if size > MAX_SIZE:
        raise ValueError(f"must be at most 1 EiB, got {shown}")
    return size


def format_size(size: int) -> str:
    """A short binary rendering for messages: ``6 GiB``, ``1.5 TiB``, ``1000 B``."""
    for unit, factor in (("PiB", 1024**5), ("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2)):
        if size >= factor:
            return f"{size / factor:.4g} {unit}"
    return f"{size} B" if size < 1024 else f"{size / 1024:.4g} KiB"


def _parse_text(text: str) -> int:
    match = _SIZE.match(text)
    if not match:
        raise ValueError(
            f"cannot read {text!r} as a size; write e.g. 6G, 512M, 10GiB, 1.5T or bytes"
        )
    number, unit = match.groups()
    factor = _UNITS.get(unit.lower())
    if factor is None:
        raise ValueError(
            f"unknown size unit {unit!r}; use K, M, G, T, P (binary), KiB..PiB or KB..PB (decimal)"
        )
    try:
        exact = Decimal(number) * factor
    except InvalidOperation:  # pragma: no cover - the regex admits only decimals
        raise ValueError(f"cannot read {text!r} as a size") from None
    if exact != exact.to_integral_value():
        raise ValueError(f"must be a whole number of bytes, got {text} = {exact} bytes")
    return int(exact)

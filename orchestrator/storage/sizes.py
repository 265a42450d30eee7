"""Disk sizes read exactly as ``qemu-img create`` reads them (``6G``, ``512M``, ``1.5T``, bytes).

qemu-img (``qemu_strtosz`` in QEMU's util/cutils.c) takes optional leading whitespace and ``+``,
a decimal number with an optional fraction (no exponent), then at most one unit letter, in
either case: ``B`` (bytes), ``K``, ``M``, ``G``, ``T``, ``P``, ``E``, each a power of 1024 (``G``
is 2**30 bytes). Nothing may follow the letter: ``GB``, ``GiB``, ``2 G`` and ``2G `` are refused.
A fraction needs a unit above ``B`` and comes to whole bytes rounded half up (``1.3K`` is 1331
bytes). ``0x200`` is a hexadecimal number of bytes. A size qemu-img would read differently is
never accepted with another meaning here.

On top of that a size must be positive, a multiple of the 512-byte sector (qemu rounds other
sizes up, which would make a re-run look like a conflict) and at most 1 EiB. Two forms qemu-img
7.2 still reads are refused: a hexadecimal number with a unit (deprecated there, refused by later
versions) and a fraction too close to 0 or 1 for a double, which it misreads.
"""

from __future__ import annotations

import re
import sys

SECTOR = 512
MAX_SIZE = 2**60
# qemu-img refuses larger sizes; its arithmetic is done in 64 bits.
_QEMU_MAX = 2**63 - 1
_UINT64 = 2**64

_UNIT_POWERS = {letter: power for power, letter in enumerate("bkmgtpe")}
# As strtoull(3) reads an unsigned number: C whitespace, an optional sign, ASCII digits.
_DECIMAL = re.compile(r"[ \t\n\v\f\r]*([+-]?)([0-9]+)")
_HEX = re.compile(r"[ \t\n\v\f\r]*\+?0[xX]([0-9a-fA-F]+)")
# As strtod(3) reads the fraction after the point: digits, and an exponent only with digits.
_FRACTION = re.compile(r"\.([0-9]*)((?:[eE][+-]?[0-9]+)?)")

_SHAPE = "write bytes or a number with one unit letter and no spaces, e.g. 6G, 512M, 1.5T"


def parse_size(value: object) -> int:
    """Bytes from an int or a size string; ``ValueError`` says which rule the value breaks."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("must be a number of bytes or a size string such as 6G, 512M, 1.5T")
    size = value if isinstance(value, int) else qemu_size(value)
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


def qemu_size(text: str) -> int:
    """The bytes ``qemu-img create`` makes of ``text``; ``ValueError`` where it refuses it."""
    number = _DECIMAL.match(text)
    if number is None:
        raise ValueError(f"cannot read {text!r} as a size; {_SHAPE}")
    if number.group(1) == "-":
        raise ValueError(f"must be positive, got {text}")
    whole, end = int(number.group(2)), number.end()
    fraction = 0  # 64-bit fixed point, as qemu keeps it
    hexadecimal = whole == 0 and text[end : end + 1] in ("x", "X")
    if hexadecimal:
        whole, end = _read_hex(text)
    elif text[end : end + 1] == ".":
        fraction, end = _read_fraction(text, end)
    unit_start = end
    power = _UNIT_POWERS.get(text[end : end + 1].lower())
    if power is None:
        power = 0
    elif hexadecimal:
        raise ValueError(f"a hexadecimal size takes no unit, got {text}")
    else:
        end += 1
    if end != len(text):
        raise ValueError(_trailing_text_problem(text, unit_start))
    if power == 0 and fraction:
        raise ValueError(f"a fraction needs a unit K, M, G, T, P or E, got {text}")
    return _scaled(whole, fraction, 1024**power, text)


def _read_hex(text: str) -> tuple[int, int]:
    """The value and end of ``0x...``; like qemu, no fraction may follow."""
    match = _HEX.match(text)
    if match is None or text[match.end() : match.end() + 1] == ".":
        raise ValueError(f"cannot read {text!r} as a size; {_SHAPE}")
    return int(match.group(1), 16), match.end()


def _read_fraction(text: str, point: int) -> tuple[int, int]:
    """The fraction starting at ``text[point] == '.'`` as qemu holds it: the nearest double,
    truncated to 64 fractional bits. ``1.k`` has no fraction digits and reads as ``1k``."""
    match = _FRACTION.match(text, point)
    assert match is not None  # the pattern matches a lone '.'
    digits, exponent = match.groups()
    if not digits:
        return 0, point + 1
    if exponent:
        raise ValueError(f"a size takes no exponent, got {text}")
    value = float(f"0.{digits}")
    too_small = 0 < value < sys.float_info.min or (value == 0 and digits.strip("0"))
    if too_small or value >= 1:
        raise ValueError(f"cannot read {text!r} as a size; its fraction has too many digits")
    return int(value * _UINT64), match.end()


def _scaled(whole: int, fraction: int, factor: int, text: str) -> int:
    """``(whole + fraction / 2**64) * factor`` rounded half up, as qemu computes it."""
    if whole >= _UINT64:
        raise ValueError(f"must be at most 1 EiB, got {text}")
    size = whole * factor + ((fraction * factor + 2**63) >> 64 if factor > 1 else 0)
    if size > _QEMU_MAX:
        raise ValueError(f"must be at most 1 EiB, got {text}")
    return size


def _trailing_text_problem(text: str, unit_start: int) -> str:
    unit = text[unit_start:]
    if unit.isascii() and unit.isalpha():
        return (
            f"unknown size unit {unit!r}; use one letter B, K, M, G, T, P or E, each a power of "
            "1024 (G = GiB), as qemu-img does"
        )
    return f"cannot read {text!r} as a size; {_SHAPE}"

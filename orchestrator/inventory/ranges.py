"""Host entries as Ansible reads them: ``name[:port]`` and ``[a:b:step]`` ranges.

Mirrors ``ansible.parsing.utils.addresses.parse_address`` and
``ansible.plugins.inventory.expand_hostname_range`` so that an inventory line yields the same
host names, in the same order, as it does for Ansible.
"""

from __future__ import annotations

import itertools
import math
import re
import string

from orchestrator.inventory.limits import MAX_HOST_NAME_CHARS, MAX_RANGE_HOSTS

_NUMERIC_RANGE = r"\[(?:[0-9]+:[0-9]+)(?::[0-9]+)?\]"
_HEX_RANGE = r"\[(?:[0-9a-f]+:[0-9a-f]+)(?::[0-9]+)?\]"
_ALNUM_RANGE = r"\[(?:[a-z]:[a-z]|[0-9]+:[0-9]+)(?::[0-9]+)?\]"

_IPV6_PART = rf"(?:[0-9a-f]{{1,4}}|{_HEX_RANGE})"
_IPV4_PART = rf"(?:[01]?[0-9]{{1,2}}|2[0-4][0-9]|25[0-5]|{_NUMERIC_RANGE})"
_LABEL = rf"(?:[\w]|{_ALNUM_RANGE})(?:[\w_-]|{_ALNUM_RANGE})*(?<![_-])"

_BRACKETED_HOSTPORT = re.compile(r"^\[(.+)\]:([0-9]+)$")
_HOSTPORT = re.compile(r"^((?:[^:\[\]]|\[[^\]]*\])*):([0-9]+)$")
_IPV4 = re.compile(rf"^(?:{_IPV4_PART}\.){{3}}{_IPV4_PART}$", re.I)
_IPV6 = re.compile(
    rf"^((?:{_IPV6_PART}:){{7}}{_IPV6_PART}|(?:{_IPV6_PART}:){{1,6}}:|(?:{_IPV6_PART}:)(?::{_IPV6_PART}){{1,6}}|(?:{_IPV6_PART}:){{2}}(?::{_IPV6_PART}){{1,5}}|"
    rf"(?:{_IPV6_PART}:){{3}}(?::{_IPV6_PART}){{1,4}}|(?:{_IPV6_PART}:){{4}}(?::{_IPV6_PART}){{1,3}}|(?:{_IPV6_PART}:){{5}}(?::{_IPV6_PART}){{1,2}}|"
    rf"(?:{_IPV6_PART}:){{6}}(?::{_IPV6_PART})|:(?::{_IPV6_PART}){{1,6}}|{_IPV6_PART}?::|(?:0:){{6}}(?:{_IPV6_PART}\.){{3}}{_IPV6_PART}|"
    rf"::(?:ffff:)?(?:{_IPV6_PART}\.){{3}}{_IPV6_PART}|(?:0:){{5}}ffff:(?:{_IPV6_PART}\.){{3}}{_IPV6_PART})$",
    re.I,
)
_HOSTNAME = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$", re.I)


class RangeError(ValueError):
    """Raised when a host range such as ``web[01:5]`` breaks one of Ansible's range rules."""


def parse_address(address: str) -> tuple[str, int | None] | None:
    """Split ``host[:port]`` the way Ansible does; ``None`` when it is not a network address.

    A port follows an IPv4 address or host name as ``:NN``; an IPv6 address needs brackets
    (``[::1]:22``). Ranges are allowed inside the host part.
    """
    port: int | None = None
    for pattern in (_BRACKETED_HOSTPORT, _HOSTPORT):
        match = pattern.match(address)
        if match:
            address, port = match.group(1), int(match.group(2))
    if any(p.match(address) for p in (_IPV4, _IPV6, _HOSTNAME)):
        return address, port
    return None


def split_host_entry(entry: str) -> tuple[list[str], int | None]:
    """Host names and optional port of one inventory host entry, ranges expanded.

    An entry that is not a recognisable address is taken verbatim as a name (Ansible accepts
    any name there); its ``[..]`` ranges are still expanded.
    """
    if ":" not in entry and "[" not in entry:
        return [entry], None  # no port, no range: the name whatever parse_address finds
    parsed = parse_address(entry)
    pattern, port = parsed if parsed else (entry, None)
    if "[" in pattern:
        return expand_host_range(pattern), port
    return [pattern], port


def expand_host_range(line: str) -> list[str]:
    """Expand every ``[begin:end(:step)]`` in ``line``, left to right, as Ansible does.

    Numeric bounds with a leading zero keep their width (``[01:10]``); single letters give
    alphabetic ranges (``[a:f]``); both ends are included. The names are counted, and their
    length measured, before any is made: at most ``MAX_RANGE_HOSTS`` names of at most
    ``MAX_HOST_NAME_CHARS`` characters.
    """
    texts, ranges = _split_ranges(line)
    if not ranges:
        return [line]
    count = math.prod(_count(values) for values, _width in ranges)
    if count > MAX_RANGE_HOSTS:
        raise RangeError(
            f"host range expands to {count} hosts, more than the {MAX_RANGE_HOSTS} one entry "
            "may hold"
        )
    if not count:
        return []  # one empty range empties the product, however large the others
    longest = sum(map(len, texts)) + sum(_longest(values, width) for values, width in ranges)
    if longest > MAX_HOST_NAME_CHARS:
        raise RangeError(
            f"host range {_shown(line)} makes names longer than {MAX_HOST_NAME_CHARS} characters"
        )
    choices = [_texts(values, width) for values, width in ranges]
    return [
        "".join(part for pair in zip(texts, (*combo, ""), strict=True) for part in pair)
        for combo in itertools.product(*choices)
    ]


_Values = tuple[range | str, int]  # numbers with their zero-padded width, or letters


def _split_ranges(line: str) -> tuple[list[str], list[_Values]]:
    """The text around each ``[..]`` (one more than there are ranges) and each range."""
    texts: list[str] = []
    ranges: list[_Values] = []
    rest = line
    while True:
        head, sep, rest = rest.partition("[")
        texts.append(head)
        if not sep:
            return texts, ranges
        nrange, sep, rest = rest.partition("]")
        if not sep:
            raise RangeError(f"host range in {_shown(line)} has no closing ']'")
        ranges.append(_range_values(nrange))


def _range_values(nrange: str) -> _Values:
    bounds = nrange.split(":")
    if len(bounds) not in (2, 3):
        raise RangeError("host range must be begin:end or begin:end:step")
    beg, end = bounds[0] or "0", bounds[1]
    step = _as_int(bounds[2] if len(bounds) == 3 else "1", "step")
    if not end:
        raise RangeError("host range must specify end value")
    width = 0
    if beg[0] == "0" and len(beg) > 1:
        if len(beg) != len(end):
            raise RangeError("host range must specify equal-length begin and end formats")
        width = len(beg)
    if step <= 0:
        # Python's range() would yield nothing or fail; Ansible fails too, less clearly.
        raise RangeError("host range step must be a positive number")
    if beg in string.ascii_letters and end in string.ascii_letters:
        i_beg, i_end = string.ascii_letters.index(beg), string.ascii_letters.index(end)
        if i_beg > i_end:
            raise RangeError("host range must have begin <= end")
        return string.ascii_letters[i_beg : i_end + 1 : step], 0
    return range(_as_int(beg, "begin"), _as_int(end, "end") + 1, step), width


def _count(values: range | str) -> int:
    if isinstance(values, str):
        return len(values)
    # len() of a range fails past sys.maxsize, and bounds may be any integer.
    return max(0, (values.stop - values.start + values.step - 1) // values.step)


def _longest(values: range | str, width: int) -> int:
    if isinstance(values, str):
        return 1
    return max(width, len(str(values[0])), len(str(values[-1])))


def _texts(values: range | str, width: int) -> list[str]:
    return list(values) if isinstance(values, str) else [str(n).zfill(width) for n in values]


def _shown(text: str, limit: int = 80) -> str:
    """``text`` quoted for a message, cut short: a refusal should not echo a huge entry."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + "..."


def _as_int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise RangeError(f"host range {what} {text!r} is not a number or a single letter") from None

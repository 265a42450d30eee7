"""virt-install's ``key=value,key=value`` sub-option syntax, split as virtinst splits it.

Leading values without ``=`` fill the option's positional names (``--disk /a.img`` is ``path``);
the values of some keys may hold commas (``cpuset=1-3,^2``) and take the following pieces that
are not known keys. A key the option does not support is an error naming option and key.
"""

from __future__ import annotations

import shlex
from collections.abc import Collection, Sequence

from orchestrator.errors import InvalidInput

ON = frozenset({"on", "yes", "true", "1"})
OFF = frozenset({"off", "no", "false", "0"})


def option_error(option: str, message: str) -> InvalidInput:
    """A 422 whose single error names the virt-install option, as ``field``."""
    return InvalidInput(f"{option}: {message}", errors=[{"field": option, "message": message}])


def split_suboptions(
    option: str,
    value: str,
    known: Collection[str],
    *,
    positional: Sequence[str] = (),
    comma_keys: Collection[str] = (),
) -> dict[str, str | None]:
    """``"path=/a,size=5"`` -> ``{"path": "/a", "size": "5"}``; unknown keys are errors."""
    pairs = _tokens(option, value)
    names = list(positional)
    # Leading bare values take the positional names, like virtinst's remove_first.
    for index, (key, val) in enumerate(pairs):
        if val is not None or not names:
            break
        pairs[index] = (names.pop(0), key)
    result: dict[str, str | None] = {}
    while pairs:
        key, val = pairs.pop(0)
        if key not in known:
            raise option_error(option, f"unsupported sub-option {key!r}")
        if key in comma_keys:
            while pairs and pairs[0][0] not in known:
                more_key, more_val = pairs.pop(0)
                val = f"{val},{more_key}" + (f"={more_val}" if more_val is not None else "")
        if key in result:
            raise option_error(option, f"sub-option {key!r} given twice")
        result[key] = val
    return result


def _tokens(option: str, value: str) -> list[tuple[str, str | None]]:
    splitter = shlex.shlex(value, posix=True)
    splitter.commenters = ""
    splitter.whitespace = ","
    splitter.whitespace_split = True
    try:
        pieces = list(splitter)
    except ValueError as exc:  # an unclosed quote
        raise option_error(option, f"cannot split {value!r}: {exc}") from None
    pairs: list[tuple[str, str | None]] = []
    for piece in pieces:
        key, sep, val = piece.partition("=")
        pairs.append((key, val if sep else None))
    return pairs


def need(option: str, subs: dict[str, str | None], key: str) -> str:
    """The value of ``key``, which must be given with a value."""
    val = subs.get(key)
    if val is None or val == "":
        raise option_error(option, f"sub-option {key!r} needs a value")
    return val


def as_bool(option: str, key: str, val: str | None) -> bool:
    """virtinst's on/off values; a bare key means on."""
    if val is None or val.lower() in ON:
        return True
    if val.lower() in OFF:
        return False
    raise option_error(option, f"{key}={val!r} is not on/off, yes/no or true/false")


def as_number(option: str, key: str, val: str, kind: type[int] | type[float] = int) -> float:
    try:
        return kind(val)
    except ValueError:
        noun = "an integer" if kind is int else "a number"
        raise option_error(option, f"{key}={val!r} is not {noun}") from None

"""Name patterns of ``count`` requests: ``web-{index:02d}`` names VMs web-01, web-02, ...

A pattern is a Python format string whose only field is ``index``, with at most a width
(``{index:03d}``); indexes run from 1 to the count. Checked once, whole: every name it makes must be
valid and distinct, so a request is refused before anything is placed or stored.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from string import Formatter

FIELD = "index"
EXAMPLE = "web-{index:02d}"
_WIDTH = re.compile(r"^0?[0-9]{0,2}d?$")


def has_index(text: str) -> bool:
    """Whether ``text`` holds an ``{index}`` field (a quick test; :func:`expand` checks it)."""
    try:
        return any(field == FIELD for _, field, _, _ in Formatter().parse(text))
    except ValueError:
        return False


def expand(pattern: str, count: int, check: Callable[[str], object] | None = None) -> list[str]:
    """The ``count`` names ``pattern`` makes, each passed to ``check`` (which raises
    ``ValueError`` for a bad one). Raises ``ValueError`` saying what is wrong with the pattern."""
    try:
        fields = [(field, spec, conv) for _, field, spec, conv in Formatter().parse(pattern)]
    except ValueError as exc:
        raise ValueError(f"is not a valid pattern ({exc}); write braces as {{{{ and }}}}") from None
    named = [(field, spec, conv) for field, spec, conv in fields if field is not None]
    for field, spec, conversion in named:
        # Widths only: a spec such as ``c`` would turn an index into any character ('/', '.').
        if field != FIELD or conversion or not _WIDTH.match(spec or ""):
            raise ValueError(
                f"may hold no field but {{{FIELD}}}, with at most a width such as :02d"
            )
    if not named:
        raise ValueError(
            f"with count, must contain {{{FIELD}}} (as in {EXAMPLE!r}) so each VM gets its own"
        )
    names = []
    for index in range(1, count + 1):
        try:
            name = pattern.format(index=index)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"cannot format index {index}: {exc}") from None
        if check is not None:
            try:
                check(name)
            except ValueError as exc:
                raise ValueError(f"makes {name!r} for index {index}: {exc}") from None
        names.append(name)
    if len(set(names)) != count:
        raise ValueError("makes the same name for two indexes")
    return names

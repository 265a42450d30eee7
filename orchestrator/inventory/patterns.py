"""Ansible host patterns (``web:&prod:!web3``, ``~db\\d+``, ``g[0:2]``) and ``--limit``.

Follows ansible-core's ``InventoryManager.get_hosts``: patterns are split on ``,`` (or ``:``),
plain ones are applied first, then ``&`` intersections, then ``!`` exclusions; a word matches
group names (all their hosts) and otherwise host names; globs and ``~regex`` match both.
Subscripts are inclusive (``g[0:2]`` is three hosts). Patterns that match nothing add a warning
worded as Ansible's.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

import re2

from orchestrator.errors import InvalidInput
from orchestrator.inventory.limits import MAX_NAMES_TRIED, MAX_PATTERN_CHARS
from orchestrator.inventory.ranges import parse_address

if TYPE_CHECKING:
    from orchestrator.inventory.model import Inventory

_SUBSCRIPTED = re.compile(r"^(.+)\[(?:(-?[0-9]+)|([0-9]+)([:-])([0-9]*))\]$")
_COLON_SEPARATED = re.compile(r"(?:[^\s:\[\]]|\[[^\]]*\])+")
_GLOB_CHARS = (".", "?", "*", "[")
_FNMATCH_CHARS = ("?", "*", "[")
# Perl syntax RE2 leaves out, because no linear-time matcher can offer it.
_PCRE_ONLY = ("(?=", "(?!", "(?<=", "(?<!", "\\1", "\\2", "\\3", "(?P=", "\\g<")
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # the refusal says why; RE2 would also print it to stderr


@dataclass(frozen=True)
class HostSelection:
    """Hosts matched by a pattern, in Ansible's order, and the warnings Ansible would print."""

    hosts: tuple[str, ...]
    warnings: tuple[str, ...] = ()


class _NoSubscriptMatch(LookupError):
    """Raised when a subscript points past the hosts a pattern matched."""


def split_host_pattern(pattern: str | list[str]) -> list[str]:
    """``'a,b[1], c[2:3]'`` -> ``['a', 'b[1]', 'c[2:3]']``; ``:`` separates if there is no comma."""
    if isinstance(pattern, list):
        return [p for item in pattern for p in split_host_pattern(item)]
    if "," in pattern:
        parts = pattern.split(",")
    elif parse_address(pattern) is not None:
        parts = [pattern]
    else:
        parts = _COLON_SEPARATED.findall(pattern)
    return [p.strip() for p in parts if p.strip()]


def select_hosts(
    inventory: Inventory, pattern: str | list[str] = "all", limit: str | list[str] | None = None
) -> HostSelection:
    """Hosts of ``inventory`` matching ``pattern`` and, if given, ``limit`` (``--limit``)."""
    _check_length(pattern, "pattern")
    if limit is not None:
        _check_length(limit, "limit")
    matcher = _Matcher(inventory)
    try:
        hosts = matcher.evaluate(split_host_pattern(pattern))
        if limit is not None:
            allowed = set(matcher.evaluate(split_host_pattern(limit)))
            hosts = [h for h in hosts if h in allowed]
    except _NoSubscriptMatch as exc:
        matcher.warnings.append(str(exc))
        hosts = []
    return HostSelection(tuple(dict.fromkeys(hosts)), tuple(dict.fromkeys(matcher.warnings)))


class _Matcher:
    def __init__(self, inventory: Inventory) -> None:
        self.inventory = inventory
        self.warnings: list[str] = []
        self._cache: dict[str, list[str]] = {}
        self._names_tried = 0

    def evaluate(self, patterns: list[str]) -> list[str]:
        # An ordered set: each part costs what it matched, not what was selected before it
        # (a --limit may list a thousand hosts).
        hosts: dict[str, None] = {}
        for p in _order_patterns(patterns):
            if p in self.inventory.hosts:
                hosts.setdefault(p)
                continue
            that = self._match_one(p)
            if p[0] == "!":
                for host in that:
                    hosts.pop(host, None)
            elif p[0] == "&":
                kept = set(that)
                hosts = {h: None for h in hosts if h in kept}
            else:
                hosts.update(dict.fromkeys(that))
        return list(hosts)

    def _match_one(self, pattern: str) -> list[str]:
        if pattern in ("&", "!"):
            # ansible-core fails with an IndexError here.
            raise _invalid(pattern, "'!' or '&' must be followed by a pattern")
        if pattern[0] in "&!":
            pattern = pattern[1:]
        if pattern not in self._cache:
            expr, subscript = _split_subscript(pattern)
            if subscript and re.search(r"\[[0-9]+-[0-9]*\]$", pattern):
                self.warnings.append(
                    "Use [x:y] inclusive subscripts instead of [x-y] which has been removed"
                )
            hosts = self._enumerate(expr)
            try:
                self._cache[pattern] = _apply_subscript(hosts, subscript)
            except IndexError:
                raise _NoSubscriptMatch(
                    f"No hosts matched the subscripted pattern '{pattern}'"
                ) from None
        return self._cache[pattern]

    def _enumerate(self, pattern: str) -> list[str]:
        """Hosts of every matching group, then matching host names (duplicates kept, as in
        Ansible, because a subscript counts them)."""
        results: list[str] = []
        groups = self._match_list(self.inventory.groups, pattern)
        for group in groups:
            results.extend(self.inventory.group_hosts(group))
        if not groups or pattern[0] == "~" or any(c in pattern for c in _GLOB_CHARS):
            results.extend(self._match_list(self.inventory.hosts, pattern))
        if not results and not groups and pattern != "all":
            self.warnings.append(f"Could not match supplied host pattern, ignoring: {pattern}")
        return results

    def _match_list(self, names: Collection[str], pattern: str) -> list[str]:
        if pattern[0] != "~" and not any(c in pattern for c in _FNMATCH_CHARS):
            # A glob without wildcards matches only itself (as Ansible's fnmatch finds).
            return [pattern] if pattern in names else []
        self._names_tried += len(names)
        if self._names_tried > MAX_NAMES_TRIED:
            raise _invalid(
                pattern,
                f"globs and regular expressions here would be tried on more than "
                f"{MAX_NAMES_TRIED} host and group names; name fewer patterns",
            )
        match = _compiled(pattern)
        return [name for name in names if match(name)]


def _order_patterns(patterns: list[str]) -> list[str]:
    regular = [p for p in patterns if p and p[0] not in "!&"]
    intersections = [p for p in patterns if p and p[0] == "&"]
    exclusions = [p for p in patterns if p and p[0] == "!"]
    return (regular or ["all"]) + intersections + exclusions


def _compiled(pattern: str) -> Callable[[str], object]:
    """The match function of a glob (Python's re: fnmatch's translation cannot backtrack
    without end) or of a ``~regex`` (RE2, which matches in time linear in the name)."""
    if pattern[0] != "~":
        try:
            return re.compile(fnmatch.translate(pattern)).match
        except re.error as exc:
            raise _invalid(pattern, f"invalid glob: {exc}") from None
    try:
        return re2.compile(pattern[1:], options=_RE2_OPTIONS).match
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args else str(exc)
        if any(marker in pattern for marker in _PCRE_ONLY):
            reason += (
                "; lookarounds and backreferences are not supported: regular expressions in "
                "host patterns are matched by RE2, in time linear in the host name"
            )
        raise _invalid(pattern, f"invalid regular expression: {reason}") from None


def _invalid(pattern: str, message: str) -> InvalidInput:
    shown = pattern if len(pattern) <= 100 else pattern[:100] + "..."
    return InvalidInput(
        f"Invalid host list pattern: {shown} ({message})",
        errors=[{"field": "pattern", "message": message}],
    )


def _check_length(pattern: str | list[str], field: str) -> None:
    length = len(pattern) if isinstance(pattern, str) else sum(len(p) + 1 for p in pattern)
    if length > MAX_PATTERN_CHARS:
        message = f"longer than {MAX_PATTERN_CHARS} characters"
        raise InvalidInput(
            f"host {field} is {message}", errors=[{"field": field, "message": message}]
        )


def _split_subscript(pattern: str) -> tuple[str, tuple[int, int | None] | None]:
    if pattern[0] == "~":
        return pattern, None
    match = _SUBSCRIPTED.match(pattern)
    if not match:
        return pattern, None
    expr, index, start, _sep, end = match.groups()
    if index:
        return expr, (int(index), None)
    return expr, (int(start), int(end) if end else -1)


def _apply_subscript(hosts: list[str], subscript: tuple[int, int | None] | None) -> list[str]:
    if not hosts or not subscript:
        return hosts
    start, end = subscript
    if end:
        # Ansible's end is inclusive; an open end ("g[2:]") means the last host.
        last = len(hosts) - 1 if end == -1 else end
        return hosts[start : last + 1]
    return [hosts[start]]

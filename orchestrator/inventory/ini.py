"""Reader for Ansible's INI inventory format, following ansible-core's ``ini`` plugin.

Lines before any section are ``ungrouped`` hosts; ``[g]`` lists hosts, ``[g:children]`` child
groups (which may be declared later), ``[g:vars]`` one ``key=value`` per line. Values on host
lines and in ``:vars`` go through ``ast.literal_eval`` as in ansible-core, so ``port=22`` is an
integer and ``x='22'`` a string.
"""

from __future__ import annotations

import ast
import re
import shlex
import warnings
from typing import Any

from orchestrator.inventory.graph import GraphError, InventoryGraph
from orchestrator.inventory.limits import MAX_QUOTED_LINE_CHARS
from orchestrator.inventory.problems import inventory_error
from orchestrator.inventory.ranges import RangeError, split_host_entry

_SECTION = re.compile(r"^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:\#.*)?$")
_GROUP_NAME = re.compile(r"^([^:\]\s]+)\s*(?:\#.*)?$")
_COMMENT_MARKERS = ("#", ";")
# Names (deploy, eu-west-1a, a.b) and dotted quads: Python would read a Name, an Attribute,
# a BinOp or a syntax error, never a literal.
_NEVER_LITERAL = re.compile(r"(?:[A-Za-z_][A-Za-z0-9_.\-]*|[0-9]+(?:\.[0-9]+){2,})\Z")
_SHLEX_SPECIAL = ("'", '"', "\\")
_SHLEX_WHITESPACE = re.compile("[ \t\r\n]+")


class _Rule(ValueError):
    """Raised inside the reader; carries the rule that a line broke."""


def read_ini(text: str, graph: InventoryGraph, source: str) -> None:
    """Add the hosts, groups and variables of INI ``text`` to ``graph``."""
    reader = _IniReader(graph)
    line_no = 0
    try:
        for line_no, raw in enumerate(text.splitlines(), start=1):
            reader.feed(raw.strip(), line_no)
        line_no, rule = reader.unresolved()
    except (_Rule, GraphError, RangeError) as exc:
        raise inventory_error(source, line_no, str(exc)) from None
    if rule:
        raise inventory_error(source, line_no, rule)


class _IniReader:
    def __init__(self, graph: InventoryGraph) -> None:
        self.graph = graph
        self.group = "ungrouped"
        self.state = "hosts"
        # Groups referenced by [g:vars] or [p:children] before a [g] section declares them.
        self.pending: dict[str, dict[str, Any]] = {}

    def feed(self, line: str, line_no: int) -> None:
        if not line or line[0] in _COMMENT_MARKERS:
            return
        match = _SECTION.match(line)
        if match:
            self._enter_section(match.group(1), match.group(2) or "hosts", line_no)
        elif line.startswith("[") and line.endswith("]"):
            raise _Rule(
                f"Invalid section entry: '{line}'. Please make sure that there are no spaces "
                "in the section entry, and that there are no other invalid characters"
            )
        elif self.state == "hosts":
            self._host_line(line)
        elif self.state == "vars":
            key, value = _variable_definition(line)
            self.graph.set_variable(self.group, key, value)
        else:
            self._child_line(line, line_no)

    def unresolved(self) -> tuple[int, str | None]:
        """The first reference to a group that was never declared, as (line, rule)."""
        for name, decl in self.pending.items():
            if decl["state"] == "vars":
                return decl[
                    "line"
                ], f"Section [{name}:vars] not valid for undefined group {name!r}."
            parent = decl["parents"][-1]
            return decl["line"], f"Section [{parent}:children] includes undefined group {name!r}."
        return 0, None

    def _enter_section(self, name: str, state: str, line_no: int) -> None:
        if state not in ("hosts", "children", "vars"):
            raise _Rule(f"Section [{name}:{state}] has unknown type: {state}")
        self.group, self.state = name, state
        if name not in self.graph.groups:
            if state == "vars" and name not in self.pending:
                self.pending[name] = {"line": line_no, "state": state}
            self.graph.add_group(name)
        if name in self.pending and state != "vars":
            if self.pending[name]["state"] == "children":
                self._add_pending_children(name)
            else:
                del self.pending[name]

    def _add_pending_children(self, group: str) -> None:
        # Depth first as ansible-core recurses, with a stack: chains may be long.
        stack = [(group, iter(self.pending[group]["parents"]))]
        while stack:
            current, parents = stack[-1]
            parent = next(parents, None)
            if parent is None:
                stack.pop()
                self.pending.pop(current, None)
                continue
            self.graph.add_child(parent, current)
            if parent in self.pending and self.pending[parent]["state"] == "children":
                stack.append((parent, iter(self.pending[parent]["parents"])))

    def _host_line(self, line: str) -> None:
        tokens = _host_tokens(line)
        entry = tokens[0] if tokens else ""
        names, port = split_host_entry(entry)
        if entry.strip().endswith(":") and port is None:
            raise _Rule(
                f"Invalid host pattern '{entry}' supplied, ending in ':' is not allowed, "
                "this character is reserved to provide a port."
            )
        if any(name.strip() == "---" for name in names):
            raise _Rule(
                f"Invalid host pattern '{entry}' supplied, '---' is normally a sign this is "
                "a YAML file."
            )
        variables = {}
        for token in tokens[1:]:
            if "=" not in token:
                raise _Rule(f"Expected key=value host variable assignment, got: {token}")
            key, value = token.split("=", 1)
            variables[key] = parse_ini_value(value)
        for name in names:
            self.graph.add_host(name, self.group, port)
            for key, value in variables.items():
                self.graph.set_variable(name, key, value)

    def _child_line(self, line: str, line_no: int) -> None:
        match = _GROUP_NAME.match(line)
        if not match:
            raise _Rule(f"Expected group name, got: {line}")
        child = match.group(1)
        if child in self.graph.groups:
            self.graph.add_child(self.group, child)
        elif child in self.pending:
            self.pending[child]["parents"].append(self.group)
        else:
            self.pending[child] = {"line": line_no, "state": "children", "parents": [self.group]}


def _host_tokens(line: str) -> list[str]:
    """The words of a host line as ``shlex.split(line, comments=True)`` gives them.

    shlex copies a word once per character it reads, so a long word costs its length
    squared: lines without quotes or backslashes (almost all) are split here directly, and
    the others must stay under ``MAX_QUOTED_LINE_CHARS``."""
    if not any(c in line for c in _SHLEX_SPECIAL):
        # Without quotes or escapes, shlex's words are runs of anything but its whitespace,
        # and a '#' anywhere starts a comment.
        words = line.partition("#")[0].strip(" \t\r\n")
        return _SHLEX_WHITESPACE.split(words) if words else []
    if len(line) > MAX_QUOTED_LINE_CHARS:
        raise _Rule(
            f"a host line with quotes or backslashes may be at most {MAX_QUOTED_LINE_CHARS} "
            "characters long; put long values in group_vars/ or host_vars/"
        )
    try:
        return shlex.split(line, comments=True)
    except ValueError as exc:
        raise _Rule(f"Error parsing host definition '{line}': {exc}") from None


def _variable_definition(line: str) -> tuple[str, Any]:
    if "=" not in line:
        raise _Rule(f"Expected key=value, got: {line}")
    key, value = (part.strip() for part in line.split("=", 1))
    return key, parse_ini_value(value)


def parse_ini_value(text: str) -> Any:
    """An INI value as ansible-core reads it: a Python literal if it is one, else the text."""
    if _NEVER_LITERAL.match(text) and text not in ("True", "False", "None"):
        return text  # most values; literal_eval would compile each only to fail
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)
            value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
    except (TypeError, MemoryError, RecursionError) as exc:
        shown = text if len(text) <= 80 else text[:80] + "..."
        raise _Rule(f"cannot read value {shown!r}: {type(exc).__name__}") from None
    return _plain(value)


def _plain(value: Any) -> Any:
    """Literals reduced to what inventory variables may hold, as ansible-core converts them."""
    if isinstance(value, (list, tuple, set)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if value is ...:
        return "..."
    if isinstance(value, complex):
        return str(value)
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise _Rule(f"value {value!r} is not valid UTF-8") from None
    return value

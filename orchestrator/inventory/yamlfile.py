"""Reader for Ansible's YAML (and JSON) inventory format, following ansible-core's ``yaml`` plugin.

Top-level keys are groups; each group may hold ``hosts`` (host pattern -> vars), ``vars`` and
``children`` (nested groups), processed in the order they appear, as Ansible does. Mappings keep
the line of each key so that errors can name it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import yaml
from yaml.composer import Composer, ComposerError

from orchestrator.errors import InvalidInput
from orchestrator.inventory.graph import GraphError, InventoryGraph
from orchestrator.inventory.limits import MAX_YAML_DEPTH, MAX_YAML_VALUES
from orchestrator.inventory.problems import inventory_error
from orchestrator.inventory.ranges import RangeError, split_host_entry

_SECTIONS = ("vars", "children", "hosts")


class LineDict(dict[Any, Any]):
    """A YAML mapping that remembers the 1-based line of each key."""

    lines: dict[Any, int]


ALIAS_RULE = (
    "YAML aliases are not accepted in inventories: write the value out where it is used "
    "(an alias can make a few bytes expand without end)"
)
DEPTH_RULE = f"YAML nested more than {MAX_YAML_DEPTH} levels deep"

_Base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _PyParser(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser):
    """PyYAML's own parser, where libyaml is missing."""

    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)


# libyaml's parser under Python's composer: the composer is where aliases can be refused.
_Parser: type[Any]
try:
    from yaml._yaml import CParser

    _Parser = CParser
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    _Parser = _PyParser


class _LineLoader(_Base):  # type: ignore[valid-type,misc]
    """Safe YAML loader whose mappings are ``LineDict``; ``!unsafe`` strings load as text.

    For the operator's own variables files: aliases are allowed there, and ``plain`` caps
    what they expand to."""


class _InventoryComposer(Composer):
    """Refuses every alias where it appears, before anything could expand, and nesting
    deeper than ``MAX_YAML_DEPTH`` (the readers recurse on it)."""

    # From the parser this composer is mixed with.
    check_event: Callable[..., bool]
    peek_event: Callable[[], Any]

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise ComposerError(None, None, ALIAS_RULE, self.peek_event().start_mark)
        if self.depth >= MAX_YAML_DEPTH:
            raise ComposerError(None, None, DEPTH_RULE, self.peek_event().start_mark)
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


class _InventoryLoader(
    _InventoryComposer,
    _Parser,
    yaml.constructor.SafeConstructor,
    yaml.resolver.Resolver,
):
    """What inventories are read with: ``_LineLoader``'s constructors, no aliases."""

    def __init__(self, stream: str) -> None:
        _Parser.__init__(self, stream)
        _InventoryComposer.__init__(self)
        yaml.constructor.SafeConstructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    mapping = LineDict()
    mapping.lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            mapping[key] = loader.construct_object(value_node, deep=True)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "found an unhashable key", key_node.start_mark
            ) from None
        mapping.lines[key] = key_node.start_mark.line + 1
    return mapping


def _construct_unsafe(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    raise yaml.constructor.ConstructorError(
        None, None, "!unsafe applies to strings only", node.start_mark
    )


def _construct_vault(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    raise yaml.constructor.ConstructorError(
        None, None, "vault-encrypted values (!vault) are not supported", node.start_mark
    )


for _loader in (_LineLoader, _InventoryLoader):
    _loader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
    _loader.add_constructor("!unsafe", _construct_unsafe)
    _loader.add_constructor("!vault", _construct_vault)


class YamlRefused(InvalidInput):
    """Raised when YAML holds what an inventory may not: an alias, or nesting too deep."""


class ExpansionError(ValueError):
    """Raised when YAML data, its aliases followed, holds more than ``MAX_YAML_VALUES``."""


def load_yaml(text: str, source: str, *, aliases: bool = False) -> Any:
    """Parse YAML ``text``; syntax errors become ``InvalidInput`` naming ``source`` and line.

    Without ``aliases`` (inventories, which may come through the API), an alias is refused
    where it appears."""
    try:
        loader: Any = _LineLoader if aliases else _InventoryLoader
        return yaml.load(text, Loader=loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = exc.problem or str(exc)
        if problem in (ALIAS_RULE, DEPTH_RULE):
            raise _refused(source, line, problem) from None
        raise inventory_error(source, line, f"invalid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise inventory_error(source, None, f"invalid YAML: {exc}") from None
    except RecursionError:
        raise _refused(source, None, DEPTH_RULE) from None


def _refused(source: str, line: int | None, rule: str) -> YamlRefused:
    error = inventory_error(source, line, rule)
    return YamlRefused(error.detail, **error.extra)


def plain(value: Any, limit: int = MAX_YAML_VALUES) -> Any:
    """``value`` with every ``LineDict`` turned back into a plain ``dict``; ExpansionError
    when it holds more than ``limit`` values (aliases repeat what they name)."""
    left = limit

    def copy(item: Any) -> Any:
        nonlocal left
        left -= 1
        if left < 0:
            raise ExpansionError(f"YAML data expands to more than {limit} values")
        if isinstance(item, dict):
            return {k: copy(v) for k, v in item.items()}
        if isinstance(item, list):
            return [copy(v) for v in item]
        return item

    return copy(value)


def read_yaml(data: Any, graph: InventoryGraph, source: str) -> None:
    """Add the groups of a parsed YAML inventory document to ``graph``."""
    if not data:
        raise inventory_error(source, None, "Parsed empty YAML file")
    if not isinstance(data, Mapping):
        raise inventory_error(
            source,
            1,
            f"YAML inventory has invalid structure, it should be a dictionary, "
            f"got: {type(data).__name__}",
        )
    if data.get("plugin"):
        raise inventory_error(
            source, _line(data, "plugin"), "Plugin configuration YAML file, not YAML inventory"
        )
    reader = _YamlReader(graph, source)
    for name, group_data in data.items():
        reader.group(name, group_data, _line(data, name))


class _YamlReader:
    def __init__(self, graph: InventoryGraph, source: str) -> None:
        self.graph = graph
        self.source = source

    def group(self, name: Any, data: Any, line: int | None) -> Any:
        if not isinstance(data, (Mapping, type(None))):
            self.graph.warnings.append(f"Skipping '{name}' as this is not a valid group definition")
            return name
        if not isinstance(name, str) or not name:
            raise inventory_error(
                self.source, line, f"Unable to add group {name!r}: a group name must be a string"
            )
        self.graph.add_group(name)
        if data is None:
            return name
        data = _copy_with_lines(data)
        for section in _SECTIONS:
            if isinstance(data.get(section), str):
                data[section] = {data[section]: None}
            if not isinstance(data.get(section), (Mapping, type(None))):
                raise inventory_error(
                    self.source,
                    _line(data, section),
                    f'Invalid "{section}" entry for "{name}" group, requires a dictionary, '
                    f'found "{type(data[section]).__name__}" instead.',
                )
        for key, value in data.items():
            self._section(name, key, value, _line(data, key))
        return name

    def _section(self, group: str, key: Any, value: Any, line: int | None) -> None:
        if value is None:
            return
        if not isinstance(value, Mapping):
            self.graph.warnings.append(
                f"Skipping key ({key}) in group ({group}) as it is not a mapping, "
                f"it is a {type(value).__name__}"
            )
        elif key == "vars":
            for var, var_value in value.items():
                self._apply(line, self.graph.set_variable, group, var, plain(var_value))
        elif key == "children":
            for child, child_data in value.items():
                child_line = _line(value, child)
                child = self.group(child, child_data, child_line)
                self._apply(child_line, self.graph.add_child, group, child)
        elif key == "hosts":
            for pattern, host_vars in value.items():
                self._hosts(group, pattern, host_vars, _line(value, pattern))
        else:
            self.graph.warnings.append(
                f'Skipping unexpected key ({key}) in group ({group}), only "vars", '
                '"children" and "hosts" are valid'
            )

    def _hosts(self, group: str, pattern: Any, host_vars: Any, line: int | None) -> None:
        if not isinstance(pattern, str):
            raise inventory_error(
                self.source,
                line,
                f"Host pattern {pattern} must be a string. "
                "Enclose integers/floats in quotation marks.",
            )
        names, port = self._apply(line, split_host_entry, pattern)
        host_vars = host_vars or {}
        if not isinstance(host_vars, Mapping):
            raise inventory_error(
                self.source,
                line,
                f"Invalid data from file, expected dictionary and got: {host_vars}",
            )
        # One copy shared by every host of a range: Inventory.host_vars copies on the way out.
        values = {var: plain(var_value) for var, var_value in host_vars.items()}
        for name in names:
            self._apply(line, self.graph.add_host, name, group, port)
            for var, var_value in values.items():
                self._apply(line, self.graph.set_variable, name, var, var_value)

    def _apply(self, line: int | None, func: Any, *args: Any) -> Any:
        try:
            return func(*args)
        except (GraphError, RangeError) as exc:
            raise inventory_error(self.source, line, str(exc)) from None


def _copy_with_lines(mapping: Mapping[Any, Any]) -> LineDict:
    copy = LineDict(mapping)
    copy.lines = dict(getattr(mapping, "lines", {}))
    return copy


def _line(mapping: Any, key: Any) -> int | None:
    lines = getattr(mapping, "lines", None)
    return lines.get(key) if lines else None

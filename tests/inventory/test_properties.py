"""Property tests: any text given as an INI or YAML inventory, any host pattern, any host range
either reads or is refused as bad input (``InvalidInput``, or ``RangeError`` for a bare range),
never with another exception, and each within a generous deadline."""

from __future__ import annotations

import os

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.errors import InvalidInput
from orchestrator.inventory import Inventory, parse_inventory, select_hosts
from orchestrator.inventory.ranges import RangeError, expand_host_range, split_host_entry

# Generous: a property that only holds with a warm cache is no guarantee. Under CI the
# examples are the same on every run, so a failure there is reproducible.
BOUNDED = settings(
    deadline=2000,
    max_examples=150,
    database=None,
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

NAME = st.from_regex(r"[a-z][a-z0-9_.-]{0,12}", fullmatch=True)
BIG = st.integers(min_value=0, max_value=10**12).map(str)
RANGE = st.builds(
    lambda a, b, step: f"[{a}:{b}{step}]",
    st.one_of(BIG, st.sampled_from(["0", "00", "a", "z", "A", "", "-3"])),
    st.one_of(BIG, st.sampled_from(["9", "99999", "f", "Z", "", "x1"])),
    st.sampled_from(["", ":1", ":3", ":0", ":-1", ":x"]),
)
HOST_ENTRY = st.builds(
    lambda head, ranges, tail, port: head + "".join(ranges) + tail + port,
    NAME,
    st.lists(RANGE, max_size=3),
    st.sampled_from(["", ".example.com", "-x", "]", "["]),
    st.sampled_from(["", ":22", ":", ":99999", ":x"]),
)
VALUE = st.one_of(
    st.sampled_from(
        [
            *("1", "'1'", '"x y"', "[1, 2]", "{'a': 1}", "True", "None", "1e400", "0x1f"),
            *("-" * 500 + "1", "[" * 300 + "]" * 300, "9" * 5000, "'open", "\\", "a=b"),
        ]
    ),
    st.text(max_size=20),
)
INI_LINE = st.one_of(
    st.builds(lambda n: f"[{n}]", NAME),
    st.builds(lambda n, s: f"[{n}:{s}]", NAME, st.sampled_from(["vars", "children", "x", ""])),
    st.builds(
        lambda e, kv: " ".join([e, *(f"{k}={v}" for k, v in kv)]),
        HOST_ENTRY,
        st.lists(st.tuples(NAME, VALUE), max_size=4),
    ),
    st.builds(lambda k, v: f"{k}={v}", NAME, VALUE),
    NAME,
    st.sampled_from(["# comment", "; comment", "", "---", "[", "[a b]", "all:", "*", "&x"]),
    st.text(max_size=30),
)
INI_TEXT = st.lists(INI_LINE, max_size=25).map("\n".join)

YAML_SCALAR = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=15)
)
YAML_DATA = st.recursive(
    YAML_SCALAR,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.one_of(NAME, HOST_ENTRY), inner, max_size=4)
    ),
    max_leaves=30,
)
SECTION = st.one_of(
    st.dictionaries(HOST_ENTRY, st.one_of(st.none(), st.dictionaries(NAME, YAML_DATA, max_size=3))),
    st.dictionaries(NAME, YAML_DATA, max_size=3),
    YAML_DATA,
)
GROUP = st.dictionaries(st.sampled_from(["hosts", "vars", "children", "other"]), SECTION)
INVENTORY_DATA = st.dictionaries(
    st.one_of(NAME, st.sampled_from(["all", "ungrouped", "plugin"])),
    st.one_of(st.none(), GROUP, YAML_DATA),
    max_size=5,
)
YAML_FRAGMENT = st.sampled_from(
    ["&a ", "*a", "<<: *a\n", "!unsafe ", "!vault |\n  x\n", "!!python/object:os.system\n",
     "[", "{", "- ", ": ", "? ", "\t", "%YAML 1.1\n---\n", "...\n", "'", '"', "|\n", ">\n",
     "  ", "\n", "a", "1", "h[0:9]", "hosts:\n", "children:\n", "vars:\n"]
)  # fmt: skip
YAML_TEXT = st.one_of(
    INVENTORY_DATA.map(lambda d: yaml.safe_dump(d, sort_keys=False)),
    st.builds(
        lambda d, cuts: _spliced(yaml.safe_dump(d, sort_keys=False), cuts),
        INVENTORY_DATA,
        st.lists(st.tuples(st.integers(0, 10_000), YAML_FRAGMENT), max_size=5),
    ),
    st.lists(YAML_FRAGMENT, max_size=40).map("".join),
)


def _spliced(text: str, cuts: list[tuple[int, str]]) -> str:
    for at, fragment in cuts:
        at %= len(text) + 1
        text = text[:at] + fragment + text[at:]
    return text


def read(text: str, fmt: str | None) -> Inventory | None:
    """The inventory, or None when it is refused as bad input; any other exception fails."""
    try:
        inventory = parse_inventory(text, fmt)  # type: ignore[arg-type]
    except InvalidInput:
        return None
    select_hosts(inventory, "all")  # a read inventory is usable
    return inventory


@BOUNDED
@given(INI_TEXT)
def test_any_ini_text_reads_or_is_refused_as_bad_input(text: str) -> None:
    read(text, "ini")


@BOUNDED
@given(YAML_TEXT)
def test_any_yaml_text_reads_or_is_refused_as_bad_input(text: str) -> None:
    read(text, "yaml")


@BOUNDED
@given(st.one_of(INI_TEXT, YAML_TEXT))
def test_any_text_of_unknown_format_reads_or_is_refused_as_bad_input(text: str) -> None:
    read(text, None)


@BOUNDED
@given(st.lists(st.tuples(NAME, HOST_ENTRY), max_size=8))
def test_hosts_read_from_ranges_are_each_named_once(entries: list[tuple[str, str]]) -> None:
    text = "".join(f"[{group}]\n{entry}\n" for group, entry in entries)
    inventory = read(text, "ini")
    if inventory is not None:
        assert len(inventory.select("all")) == len(inventory.hosts)


INVENTORY = parse_inventory(
    "[web]\nweb[01:20].example.com\n" + "a" * 60 + "-\n[db]\ndb[a:f]\n[prod:children]\nweb\ndb\n",
    "ini",
)
PATTERN_PART = st.one_of(
    st.sampled_from(
        ["all", "web", "db", "prod", "*", "web*", "db?", "~web\\d+", "~(a+)+$", "~(a|aa)+$",
         "~(.*a){12}$", "~(?=x)", "~(a)\\1", "~[", "~((a{100}){100}){100}", "web[0]", "web[-1]",
         "web[2:]", "web[1-3]", "db[9]", "[", "]", "\\", "~", "!", "&", "@file", "::1",
         "2001:db8::1", "web01.example.com:22", "*.example.com", "[!a]*", "[]"]
    ),
    st.from_regex(r"[~!&]?[a-z0-9.*?\[\]:(){}+|\\^$-]{1,12}", fullmatch=True),
)  # fmt: skip
PATTERN = st.lists(
    st.tuples(st.sampled_from(["", "!", "&"]), PATTERN_PART), min_size=1, max_size=6
).map(lambda parts: ",".join(prefix + part for prefix, part in parts))


@BOUNDED
@given(PATTERN, st.one_of(st.none(), PATTERN))
def test_any_host_pattern_selects_or_is_refused_as_bad_input(
    pattern: str, limit: str | None
) -> None:
    try:
        selection = select_hosts(INVENTORY, pattern, limit)
    except InvalidInput:
        return
    assert set(selection.hosts) <= set(INVENTORY.hosts)


@BOUNDED
@given(st.one_of(HOST_ENTRY, st.text(max_size=40)))
def test_any_host_entry_expands_or_is_refused_as_bad_input(entry: str) -> None:
    try:
        names, port = split_host_entry(entry)
        expanded = expand_host_range(entry)
    except RangeError:
        return
    assert len(names) <= 10_000 and len(expanded) <= 10_000
    assert port is None or isinstance(port, int)

"""Variables merge as in Ansible: all < parent < child < host, files after source vars."""

from __future__ import annotations

from pathlib import Path

from orchestrator.inventory import load_inventory, parse_inventory

NESTED = """\
[all:vars]
v=all
[parent:vars]
v=parent
[child:vars]
v=child
[parent:children]
child
[child]
h1
h2 v=host
"""


def test_deeper_group_beats_parent_and_host_beats_groups() -> None:
    inv = parse_inventory(NESTED, "ini")
    assert inv.host_vars("h1")["v"] == "child"
    assert inv.host_vars("h2")["v"] == "host"
    assert inv.groups["child"].depth == 2


def test_same_depth_groups_merge_by_name_then_priority() -> None:
    text = "[a]\nh\n[b]\nh\n[a:vars]\nv=a\n[b:vars]\nv=b\n"
    assert parse_inventory(text, "ini").host_vars("h")["v"] == "b"
    prioritised = text + "[a:vars]\nansible_group_priority=5\n"
    inv = parse_inventory(prioritised, "ini")
    assert inv.host_vars("h")["v"] == "a"
    assert inv.groups["a"].priority == 5
    assert "ansible_group_priority" not in inv.host_vars("h")


def test_depth_counts_the_longest_path_from_all() -> None:
    text = "[top:children]\nmid\nleaf\n[mid:children]\nleaf\n[leaf]\nh\n[top:vars]\nv=top\n"
    inv = parse_inventory(text + "[leaf:vars]\nv=leaf\n[mid:vars]\nv=mid\n", "ini")
    assert [inv.groups[g].depth for g in ("top", "mid", "leaf")] == [1, 2, 3]
    assert inv.host_vars("h")["v"] == "leaf"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_group_and_host_vars_directories(tmp_path: Path) -> None:
    _write(tmp_path / "hosts", "[web]\nw1 inline=1\n[web:vars]\nfrom=web_inventory\n")
    _write(tmp_path / "group_vars" / "all.yml", "from: all_file\nall_only: 1\n")
    _write(tmp_path / "group_vars" / "web" / "a.yml", "from: web_dir\nlist: [1]\n")
    _write(tmp_path / "group_vars" / "web" / "b.json", '{"list": [2]}')
    _write(tmp_path / "group_vars" / "web" / "skip.txt", "list: [3]\n")
    _write(tmp_path / "host_vars" / "w1.yaml", "inline: 2\n")
    _write(tmp_path / "host_vars" / "w1.json", '{"inline": 3}')
    inv = load_inventory(tmp_path / "hosts")
    # The first existing of NAME, NAME.yml, NAME.yaml, NAME.json is used.
    assert inv.host_vars("w1") == {"from": "web_dir", "all_only": 1, "list": [2], "inline": 2}


def test_group_vars_all_file_beats_group_vars_in_the_inventory(tmp_path: Path) -> None:
    # Ansible's default precedence reads all inventory group vars before any group_vars/ file.
    _write(tmp_path / "inv.ini", "[web]\nw1\n[web:vars]\nv=inventory\n")
    _write(tmp_path / "group_vars" / "all", "v: all_file\n")
    assert load_inventory(tmp_path / "inv.ini").host_vars("w1")["v"] == "all_file"


def test_vars_file_names_cannot_leave_the_vars_folder(tmp_path: Path) -> None:
    _write(tmp_path / "inv" / "hosts", "[g]\n../secret\n")
    _write(tmp_path / "inv" / "host_vars" / "x", "a: 1\n")
    _write(tmp_path / "secret.yml", "leaked: true\n")
    assert load_inventory(tmp_path / "inv" / "hosts").host_vars("../secret") == {}

"""``group_vars/`` and ``host_vars/`` beside an inventory, read as Ansible's host_group_vars does.

For a name ``NAME`` the first of ``NAME``, ``NAME.yml``, ``NAME.yaml``, ``NAME.json`` that exists
is used; if it is a directory, every file in it (recursively, sorted, skipping hidden files and
``~`` backups, extension empty or one of those) is merged in order. Empty files are ignored.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from orchestrator.inventory.problems import inventory_error
from orchestrator.inventory.yamlfile import ExpansionError, load_yaml, plain

VARS_EXTENSIONS = (".yml", ".yaml", ".json")


def load_entity_vars(base: Path, subdir: str, name: str) -> dict[str, Any]:
    """Merged variables of ``base/subdir/NAME*`` for one host or group (``{}`` if none)."""
    if name.startswith("/"):
        # Ansible skips names that look like absolute paths (chroot-style hosts).
        return {}
    folder = base / subdir
    if not folder.is_dir():
        return {}
    merged: dict[str, Any] = {}
    for path in find_vars_files(folder, name):
        data = read_vars_file(path)
        if data:
            if not isinstance(data, dict):
                raise inventory_error(
                    str(path),
                    None,
                    f"variables must be a mapping, got {type(data).__name__}",
                )
            merged |= data
    return merged


def find_vars_files(folder: Path, name: str) -> list[Path]:
    """The files that hold ``name``'s variables inside ``folder``, in merge order."""
    for ext in ("", *VARS_EXTENSIONS):
        candidate = folder / f"{name}{ext}"
        if not candidate.resolve().is_relative_to(folder.resolve()):
            # A name like "../x" must not reach files outside the vars folder.
            return []
        if candidate.is_dir():
            return _files_in(candidate)
        if candidate.exists():
            return [candidate]
    return []


def _files_in(folder: Path) -> list[Path]:
    found: list[Path] = []
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if entry.name.startswith(".") or entry.name.endswith("~"):
            continue
        if entry.is_dir() and not entry.suffix:
            found.extend(_files_in(entry))
        elif entry.is_file() and (not entry.suffix or entry.suffix in VARS_EXTENSIONS):
            found.append(entry)
    return found


def read_vars_file(path: Path) -> Any:
    """A YAML or JSON variables file as plain Python data."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise inventory_error(str(path), None, f"cannot read variables file: {exc}") from None
    try:
        return json.loads(text)
    except RecursionError:
        raise inventory_error(str(path), None, "JSON nested too deeply") from None
    except ValueError:
        pass
    try:
        # The operator's own file: aliases are allowed, what they expand to is capped.
        return plain(load_yaml(text, str(path), aliases=True))
    except (ExpansionError, RecursionError) as exc:
        rule = str(exc) if isinstance(exc, ExpansionError) else "YAML nested too deeply"
        raise inventory_error(str(path), None, rule) from None

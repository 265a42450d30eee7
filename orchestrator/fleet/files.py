"""Where a fleet job's local files live on a worker: ``<var_dir>/fleet-files/``, split into
areas so that a job reads and writes only what its part allows.

- ``files/``: what ``copy`` and ``script`` send (the operator fills it);
- ``keys/``: private keys; a relative ``ansible_private_key_file`` is relative to it;
- ``fetched/<job id>/``: what ``fetch`` brings back, one directory per job;
- ``known_hosts/``: the ``known_hosts_store`` that ``accept-new`` records keys in;
- anything else: the operator's inventories and vars directories (``inventory_path``,
  ``vars_dir``) and read-only known_hosts files.

Absolute paths and ``..`` are refused at the API; the worker also resolves symlinks, so a link
cannot lead a job out of the area its field is confined to.
"""

from __future__ import annotations

import os
import posixpath
from pathlib import Path

from orchestrator.errors import InvalidInput
from orchestrator.settings import Settings

FLEET_FILES = "fleet-files"
FILES_AREA = "files"
KEYS_AREA = "keys"
FETCHED_AREA = "fetched"
KNOWN_HOSTS_AREA = "known_hosts"
# Inventories and vars directories are the operator's configuration: they never come from an
# area a job writes (fetched/, known_hosts/) nor from one holding data that is not
# configuration (files/, keys/: an inventory read from a key file would echo its lines).
NOT_CONFIG_AREAS = (FILES_AREA, KEYS_AREA, FETCHED_AREA, KNOWN_HOSTS_AREA)
_AREA_PURPOSE = {
    FILES_AREA: "files that copy and script send",
    KEYS_AREA: "private keys",
    FETCHED_AREA: "what fetch brought back",
    KNOWN_HOSTS_AREA: "host keys that accept-new recorded",
}
# Names that may not become a directory of their own (a host's name under a fetch area).
RESERVED_NAMES = frozenset(
    {*NOT_CONFIG_AREAS, "group_vars", "host_vars", "vars_plugins", ".", ".."}
)


def check_relative_path(value: str) -> str:
    """``value`` if it is a clean relative path (no leading '/', '~', '..', NUL or newline);
    raises ValueError naming the rule otherwise (used by the parameter models)."""
    if not value or "\x00" in value or "\n" in value:
        raise ValueError("must be a non-empty path without NUL or newline characters")
    if value.startswith(("/", "~")):
        raise ValueError(f"must be relative to the worker's {FLEET_FILES}/ directory")
    if ".." in value.split("/"):
        raise ValueError("must not contain '..' components")
    return posixpath.normpath(value)


def check_config_path(value: str, *, allow: str = "") -> str:
    """``check_relative_path`` plus the rule for inventories, vars directories and known_hosts
    files: not the whole ``fleet-files/`` directory and not inside one of the areas that are
    not configuration, except ``allow`` (raises ValueError naming the area)."""
    path = check_relative_path(value)
    first = path.split("/")[0]
    if path == ".":
        raise ValueError(f"must name a file or directory inside {FLEET_FILES}/, not all of it")
    if first in NOT_CONFIG_AREAS and first != allow:
        raise ValueError(f"must not lie in {FLEET_FILES}/{first}/ ({_AREA_PURPOSE[first]})")
    return path


def check_path_component(name: str) -> str:
    """``name`` if it can be one directory's name (a host's directory under a fetch area);
    raises ValueError naming the rule otherwise."""
    if not name or "/" in name or "\x00" in name or name.startswith("."):
        raise ValueError(f"{name!r} cannot be a directory name (empty, '/', NUL or leading '.')")
    if name.lower() in RESERVED_NAMES:
        raise ValueError(f"{name!r} is a reserved directory name in {FLEET_FILES}/")
    return name


def fleet_files_dir(settings: Settings) -> Path:
    """The directory fleet jobs on this worker read and write local files in."""
    return settings.var_dir.resolve() / FLEET_FILES


def fetch_area(base: Path, job_id: str) -> Path:
    """Where job ``job_id``'s fetches land: ``fetched/<job id>/``."""
    return base.resolve() / FETCHED_AREA / check_path_component(job_id)


def resolve_fleet_file(base: Path, relative: str, field: str) -> Path:
    """``base/relative`` with symlinks resolved; InvalidInput naming ``field`` when it leads
    outside ``base``."""
    try:
        check_relative_path(relative)
    except ValueError as exc:
        raise _outside(field, str(exc)) from None
    root = base.resolve()
    path = (root / relative).resolve()
    if not _inside(path, root):
        raise _outside(field, f"leads outside the worker's {FLEET_FILES}/ directory")
    return path


def resolve_in_area(base: Path, area: str, relative: str, field: str) -> Path:
    """``base/area/relative`` with symlinks resolved; InvalidInput naming ``field`` when it
    leads outside that area."""
    try:
        check_relative_path(relative)
    except ValueError as exc:
        raise _outside(field, str(exc)) from None
    root = (base / area).resolve()
    path = (root / relative).resolve()
    if not _inside(path, root):
        raise _outside(field, f"leads outside the worker's {FLEET_FILES}/{area}/ directory")
    return path


def resolve_config_path(base: Path, relative: str, field: str, *, allow: str = "") -> Path:
    """An inventory, vars directory or known_hosts file: inside ``base`` once symlinks are
    resolved, not ``base`` itself and not in an area that is not configuration (except
    ``allow``)."""
    path = resolve_fleet_file(base, relative, field)
    parts = path.relative_to(base.resolve()).parts
    if not parts:
        raise _outside(field, f"must name a file or directory inside {FLEET_FILES}/, not all of it")
    if parts[0] in NOT_CONFIG_AREAS and parts[0] != allow:
        area = parts[0]
        raise _outside(field, f"must not lie in {FLEET_FILES}/{area}/ ({_AREA_PURPOSE[area]})")
    return path


def _inside(path: Path, root: Path) -> bool:
    return path == root or str(path).startswith(str(root) + os.sep)


def _outside(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"{field} {message}", errors=[{"field": field, "message": message}])

"""Where a fleet job's local files live on a worker: every worker-side path a job names
(inventory file, vars directory, script, copy source, fetch destination, known_hosts store,
relative key files) is relative to ``<var_dir>/fleet-files/`` and must stay inside it.

Absolute paths and ``..`` are refused at the API; the worker also resolves symlinks, so a link
inside the directory cannot lead a job to read or write elsewhere on the worker.
"""

from __future__ import annotations

import os
import posixpath
from pathlib import Path

from orchestrator.errors import InvalidInput
from orchestrator.settings import Settings

FLEET_FILES = "fleet-files"


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


def fleet_files_dir(settings: Settings) -> Path:
    """The directory fleet jobs on this worker read and write local files in."""
    return settings.var_dir.resolve() / FLEET_FILES


def resolve_fleet_file(base: Path, relative: str, field: str) -> Path:
    """``base/relative`` with symlinks resolved; InvalidInput naming ``field`` when it leads
    outside ``base``."""
    try:
        check_relative_path(relative)
    except ValueError as exc:
        raise _outside(field, str(exc)) from None
    root = base.resolve()
    path = (root / relative).resolve()
    if path != root and not str(path).startswith(str(root) + os.sep):
        raise _outside(field, f"leads outside the worker's {FLEET_FILES}/ directory")
    return path


def _outside(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"{field} {message}", errors=[{"field": field, "message": message}])

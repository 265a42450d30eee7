"""Rules for volume names, pool names and host paths, and the private names of unfinished volumes.

A volume name becomes a file name inside the pool's directory, so it may not climb out of it
(``/``, ``..``), hide (a leading dot) or carry bytes a file name or log line cannot (NUL, control
characters). Because user names never start with a dot, names that do are free for the worker's
own unfinished volumes (see :func:`partial_name`).
"""

from __future__ import annotations

import hashlib
import os

MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 4096
PARTIAL_PREFIX = ".partial-"


def check_volume_name(name: str) -> str:
    """``name`` when it is a safe file name inside a pool, else ``ValueError`` naming the rule."""
    if not name:
        raise ValueError("must not be empty")
    if "\x00" in name:
        raise ValueError("must not contain NUL")
    if "/" in name:
        raise ValueError("must not contain '/'")
    if name.startswith("."):
        raise ValueError("must not start with '.' (this also excludes '.' and '..')")
    if any(ord(char) < 32 or ord(char) == 127 for char in name):
        raise ValueError("must not contain control characters")
    if len(name.encode()) > MAX_NAME_BYTES:
        raise ValueError(f"must be at most {MAX_NAME_BYTES} bytes in UTF-8")
    return name


def check_pool_name(name: str) -> str:
    """Pool names follow the same rules: libvirt keeps them as file names too."""
    return check_volume_name(name)


def check_host_path(path: str) -> str:
    """``path`` when it is absolute, normalized and free of ``..`` and NUL."""
    if "\x00" in path:
        raise ValueError("must not contain NUL")
    if not path.startswith("/"):
        raise ValueError("must be an absolute path")
    if ".." in path.split("/"):
        raise ValueError("must not contain '..'")
    if os.path.normpath(path) != path or path.startswith("//"):
        raise ValueError(
            f"must be normalized (no '.', '//' or trailing '/'): {os.path.normpath(path)}"
        )
    if len(path.encode()) > MAX_PATH_BYTES:
        raise ValueError(f"must be at most {MAX_PATH_BYTES} bytes")
    return path


def partial_name(job_id: str) -> str:
    """The name a job's volume has while it is being written.

    One per job, so a re-delivered job finds (and removes) what an earlier attempt left, while
    other jobs writing the same final name keep theirs.
    """
    return PARTIAL_PREFIX + hashlib.sha256(job_id.encode()).hexdigest()[:24]


def is_partial_name(name: str) -> bool:
    return name.startswith(PARTIAL_PREFIX)

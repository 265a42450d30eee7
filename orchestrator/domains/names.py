"""Rules for the names and values that end up in a domain's XML, with messages naming each rule.

libvirt forbids ``/`` and control characters in domain names; we are stricter, for names that
are safe as file names, shell words and XML text: ``[A-Za-z0-9_.+-]``, 1-64 characters, not
starting with ``-`` or ``.``. Each check returns the value or raises ``ValueError`` with the
rule that was broken, which pydantic reports under the field's name.
"""

from __future__ import annotations

import os
import re

NAME_MAX = 64
_NAME_CHARS = re.compile(r"^[A-Za-z0-9_.+-]+$")
_XML_SPECIAL = set("<>&\"'")
_CPUSET_ITEM = re.compile(r"^(\^?)(\d+)(?:-(\d+))?$")
_MAC = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
_IDENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:+-]{0,127}$")


def check_object_name(value: str, what: str = "name") -> str:
    """A domain, pool, volume or network name under the rules above."""
    if not value:
        raise ValueError(f"{what} must not be empty")
    if len(value) > NAME_MAX:
        raise ValueError(f"{what} must be at most {NAME_MAX} characters, got {len(value)}")
    if "/" in value:
        raise ValueError(f"{what} must not contain '/' (libvirt forbids it)")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError(f"{what} must not contain control characters (libvirt forbids them)")
    special = sorted(set(value) & _XML_SPECIAL)
    if special:
        raise ValueError(f"{what} must not contain {' '.join(special)} (XML markup characters)")
    if not _NAME_CHARS.match(value):
        bad = sorted({c for c in value if not _NAME_CHARS.match(c)})
        raise ValueError(f"{what} may only contain letters, digits and _ . + - (found {bad!r})")
    if value[0] in "-.":
        raise ValueError(f"{what} must not start with '-' or '.'")
    return value


def check_identifier(value: str, what: str) -> str:
    """A device model, CPU model or feature name: a plain word, no markup or spaces."""
    if not _IDENT.match(value):
        raise ValueError(
            f"{what} must be 1-128 letters, digits or _ . : + - starting with a letter or digit"
        )
    return value


def check_absolute_path(value: str, what: str = "path") -> str:
    """An absolute, normalized file path without control characters or ``..`` components."""
    if not value.startswith("/"):
        raise ValueError(f"{what} must be an absolute path")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError(f"{what} must not contain control characters")
    if ".." in value.split("/"):
        raise ValueError(f"{what} must not contain '..' components")
    # As the storage rules: the path a job records is the one libvirt and the checks use.
    if os.path.normpath(value) != value or value.startswith("//"):
        raise ValueError(
            f"{what} must be normalized (no '.', '//' or trailing '/'): {os.path.normpath(value)}"
        )
    if len(value) > 4096:
        raise ValueError(f"{what} must be at most 4096 characters")
    return value


def check_cpuset(value: str) -> str:
    """libvirt's cpuset syntax: ``1-3,^2,5``; ranges ascending, at least one CPU left."""
    cpus: set[int] = set()
    excluded: set[int] = set()
    for item in value.split(","):
        match = _CPUSET_ITEM.match(item.strip())
        if not match:
            raise ValueError(f"cpuset item {item!r} is not N, N-M or ^N (as in '1-3,^2')")
        negate, first, last = match.group(1), int(match.group(2)), match.group(3)
        end = int(last) if last is not None else first
        if end < first:
            raise ValueError(f"cpuset range {item!r} must be ascending")
        if negate and last is not None:
            raise ValueError(f"cpuset exclusion {item!r} must name a single CPU")
        (excluded if negate else cpus).update(range(first, end + 1))
    if not cpus - excluded:
        raise ValueError("cpuset must leave at least one CPU")
    return value


def check_mac(value: str) -> str:
    """A unicast MAC address ``52:54:00:xx:xx:xx``, written with colons."""
    if not _MAC.match(value):
        raise ValueError("mac must be six hex pairs separated by ':' (as in 52:54:00:12:34:56)")
    if int(value[:2], 16) & 1:
        raise ValueError("mac must be a unicast address (the first octet's low bit is set)")
    return value.lower()

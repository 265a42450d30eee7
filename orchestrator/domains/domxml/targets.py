"""Disk target names (``vda``, ``hdc``, ``sdb``) handed out per bus, as virt-install names them."""

from __future__ import annotations

from orchestrator.errors import InvalidInput

# Prefix and how many devices the bus takes (IDE: two channels of two).
_BUS_PREFIX = {
    "virtio": ("vd", 1024),
    "ide": ("hd", 4),
    "sata": ("sd", 1024),
    "scsi": ("sd", 1024),
    "usb": ("sd", 1024),
}


def target_suffix(number: int) -> str:
    """1 -> a, 26 -> z, 27 -> aa: libvirt's disk index letters."""
    letters = ""
    while number > 0:
        number, rest = divmod(number - 1, 26)
        letters = chr(ord("a") + rest) + letters
    return letters


class TargetAllocator:
    """Hands out the next free target of each prefix, in the order disks are added."""

    def __init__(self) -> None:
        self._used: dict[str, int] = {}

    def allocate(self, bus: str, field: str) -> str:
        prefix, limit = _BUS_PREFIX[bus]
        count = self._used.get(prefix, 0) + 1
        if count > limit:
            message = f"bus {bus!r} takes at most {limit} devices; use another bus"
            raise InvalidInput.of(field, message)
        self._used[prefix] = count
        return prefix + target_suffix(count)

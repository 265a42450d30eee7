"""OS variants from the machine's osinfo-db: what each guest OS is and which devices it drives.

The database is the XML tree Debian's ``osinfo-db`` installs under ``/usr/share/osinfo/os``. It is
read once per process on first use. Lookup follows ``virt-install --osinfo``: a short id
(``rhel7.0``), a libosinfo id (``http://redhat.com/rhel/7.0``) or ``generic``/``none``; in addition
a bare major release such as ``rhel7`` resolves to that release's first minor version
(``rhel7.0``), as virt-install's own alias table did before it moved to libosinfo, and the result
says so, so a job can report the substitution.
"""

from __future__ import annotations

import difflib
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from orchestrator.errors import InvalidInput

OSINFO_OS_DIR = Path("/usr/share/osinfo/os")
GENERIC_ID = "http://libosinfo.org/generic"

# Device ids virtinst checks (virtinst/osdict.py): legacy and virtio 1.0 PCI ids.
VIRTIO_BLOCK = frozenset({"http://pcisig.com/pci/1af4/1001", "http://pcisig.com/pci/1af4/1042"})
VIRTIO_NET = frozenset({"http://pcisig.com/pci/1af4/1000", "http://pcisig.com/pci/1af4/1041"})
VIRTIO_SERIAL = frozenset({"http://pcisig.com/pci/1af4/1003", "http://pcisig.com/pci/1af4/1043"})
VIRTIO_RNG = frozenset({"http://pcisig.com/pci/1af4/1005", "http://pcisig.com/pci/1af4/1044"})
VIRTIO_GPU = frozenset({"http://pcisig.com/pci/1af4/1050"})
VIRTIO_1_NET = "http://pcisig.com/pci/1af4/1041"
Q35_CHIPSET = "http://qemu.org/chipset/x86/q35"
QEMU_XHCI = "http://pcisig.com/pci/1b36/0004"
# Legacy NIC models in virtinst's order of preference, by osinfo device id.
LEGACY_NICS = (
    ("e1000", "http://pcisig.com/pci/8086/100e"),
    ("rtl8139", "http://pcisig.com/pci/10ec/8139"),
    ("ne2k_pci", "http://pcisig.com/pci/10ec/8029"),
    ("pcnet", "http://pcisig.com/pci/1022/2000"),
)
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_MIB = 1024 * 1024


@dataclass(frozen=True)
class OsVariant:
    """One guest OS of the database, with the facts a domain definition needs."""

    id: str
    short_ids: tuple[str, ...]
    name: str
    family: str | None = None
    distro: str | None = None
    version: str | None = None
    minimum_ram_mib: int | None = None
    recommended_ram_mib: int | None = None
    recommended_vcpus: int | None = None
    devices: frozenset[str] = field(default_factory=frozenset)

    @property
    def short_id(self) -> str:
        return self.short_ids[0]

    @property
    def is_generic(self) -> bool:
        return self.id == GENERIC_ID

    @property
    def is_windows(self) -> bool:
        return self.family in ("win9x", "winnt", "win16")

    @property
    def supports_virtio_disk(self) -> bool:
        return bool(self.devices & VIRTIO_BLOCK)

    @property
    def supports_virtio_net(self) -> bool:
        return bool(self.devices & VIRTIO_NET)

    @property
    def supports_virtio_serial(self) -> bool:
        return bool(self.devices & VIRTIO_SERIAL)

    @property
    def supports_virtio_rng(self) -> bool:
        return bool(self.devices & VIRTIO_RNG)

    @property
    def supports_virtio_gpu(self) -> bool:
        return bool(self.devices & VIRTIO_GPU)

    @property
    def supports_usb3(self) -> bool:
        return QEMU_XHCI in self.devices

    @property
    def supports_q35(self) -> bool:
        # virtinst wants q35 and, for guests with virtio-net, virtio 1.0 too.
        if self.supports_virtio_net and VIRTIO_1_NET not in self.devices:
            return False
        return Q35_CHIPSET in self.devices

    def default_disk_bus(self, machine: str) -> str:
        """The bus virt-install picks for a disk of this OS on ``machine`` (pc or q35)."""
        if self.supports_virtio_disk:
            return "virtio"
        return "sata" if machine == "q35" else "ide"

    def default_cdrom_bus(self, machine: str) -> str:
        return "sata" if machine == "q35" else "ide"

    def default_nic_model(self, machine: str) -> str:
        """The NIC model virt-install picks for this OS on ``machine`` (pc or q35)."""
        if self.supports_virtio_net:
            return "virtio"
        if machine == "q35":
            return "e1000e"
        return next((model for model, dev in LEGACY_NICS if dev in self.devices), "e1000")

    def summary(self) -> dict[str, object]:
        """The variant as ``GET /v1/os-variants`` lists it."""
        return {
            "short_id": self.short_id,
            "short_ids": list(self.short_ids),
            "id": self.id,
            "name": self.name,
            "family": self.family,
            "distro": self.distro,
            "version": self.version,
            "minimum_ram_mib": self.minimum_ram_mib,
            "recommended_ram_mib": self.recommended_ram_mib,
            "recommended_vcpus": self.recommended_vcpus,
            "virtio_disk": self.supports_virtio_disk,
            "virtio_net": self.supports_virtio_net,
        }


GENERIC = OsVariant(
    id=GENERIC_ID, short_ids=("generic",), name="Generic or unknown OS. Usage is not recommended."
)


@dataclass(frozen=True)
class Resolution:
    """The variant a name resolved to; ``substituted`` says when it was not the name given."""

    variant: OsVariant
    requested: str

    @property
    def substituted(self) -> bool:
        return self.requested not in self.variant.short_ids and self.requested != self.variant.id


def resolve_os_variant(key: str, os_dir: Path = OSINFO_OS_DIR) -> Resolution:
    """Find the variant called ``key``; an unknown name is a 422 naming ``os_variant``."""
    db = load_osinfo_db(os_dir)
    if key in ("generic", "none"):
        return Resolution(GENERIC, key)
    variant = db.by_id.get(key) if "://" in key else db.by_short_id.get(key)
    if variant is None:
        variant = _major_release(db, key)
    if variant is None:
        raise _unknown_variant(db, key)
    return Resolution(variant, key)


def list_os_variants(os_dir: Path = OSINFO_OS_DIR) -> list[OsVariant]:
    """Every variant, in ``virt-install --osinfo list`` order (newest release first)."""
    return sorted([*load_osinfo_db(os_dir).by_id.values(), GENERIC], key=_natural_key)


@dataclass(frozen=True)
class OsinfoDb:
    by_id: dict[str, OsVariant]
    by_short_id: dict[str, OsVariant]


@cache
def load_osinfo_db(os_dir: Path = OSINFO_OS_DIR) -> OsinfoDb:
    """Parse every OS file under ``os_dir`` once per process."""
    raw = {entry.id: entry for entry in _read_entries(sorted(os_dir.glob("**/*.xml")))}
    by_id = {os_id: _flatten(raw, entry) for os_id, entry in raw.items()}
    by_short_id: dict[str, OsVariant] = {}
    for variant in sorted(by_id.values(), key=lambda v: v.id):
        for short_id in variant.short_ids:
            by_short_id.setdefault(short_id, variant)
    return OsinfoDb(by_id, by_short_id)


@dataclass
class _Entry:
    """One ``<os>`` element as written, before inheritance."""

    id: str
    short_ids: tuple[str, ...]
    name: str
    family: str | None
    distro: str | None
    version: str | None
    parents: tuple[str, ...]
    devices: frozenset[str]
    unsupported: frozenset[str]
    resources: dict[str, int]
    # <resources inherit="true"/>: take the resources of the OS this one derives from.
    inherit_resources: bool


def _read_entries(paths: Iterable[Path]) -> Iterator[_Entry]:
    for path in paths:
        for os_el in ET.parse(path).getroot().iter("os"):
            if os_el.get("id"):
                yield _entry(os_el)


def _entry(os_el: ET.Element) -> _Entry:
    devices = os_el.findall("devices/device")
    return _Entry(
        id=os_el.get("id", ""),
        short_ids=tuple(el.text.strip() for el in os_el.findall("short-id") if el.text),
        name=next(
            (el.text or "" for el in os_el.findall("name") if _XML_LANG not in el.attrib), ""
        ),
        family=os_el.findtext("family"),
        distro=os_el.findtext("distro"),
        version=os_el.findtext("version"),
        # libosinfo inherits devices along derives-from and clones, not upgrades.
        parents=tuple(
            el.get("id", "") for el in (*os_el.findall("derives-from"), *os_el.findall("clones"))
        ),
        devices=frozenset(d.get("id", "") for d in devices if d.get("supported") != "false"),
        unsupported=frozenset(d.get("id", "") for d in devices if d.get("supported") == "false"),
        resources=_resources(os_el),
        inherit_resources=os_el.find("resources[@inherit='true']") is not None,
    )


def _resources(os_el: ET.Element) -> dict[str, int]:
    """Minimum and recommended RAM (bytes) and CPUs, x86_64 first, then "all", as virtinst.

    A missing recommendation is twice the minimum, as virtinst approximates it.
    """
    found: dict[str, int] = {}
    for kind in ("minimum", "recommended"):
        for key in ("ram", "n-cpus"):
            for arch in ("x86_64", "all"):
                text = os_el.findtext(f"resources[@arch='{arch}']/{kind}/{key}")
                if text and int(text) > 0:
                    found[f"{kind}/{key}"] = int(text)
                    break
    for key in ("ram", "n-cpus"):
        if f"recommended/{key}" not in found and f"minimum/{key}" in found:
            found[f"recommended/{key}"] = 2 * found[f"minimum/{key}"]
    return found


def _flatten(raw: dict[str, _Entry], entry: _Entry) -> OsVariant:
    res = _own_or_inherited_resources(raw, entry)
    return OsVariant(
        id=entry.id,
        short_ids=entry.short_ids or (entry.id,),
        name=entry.name,
        family=entry.family,
        distro=entry.distro,
        version=entry.version,
        minimum_ram_mib=res["minimum/ram"] // _MIB if "minimum/ram" in res else None,
        recommended_ram_mib=res["recommended/ram"] // _MIB if "recommended/ram" in res else None,
        recommended_vcpus=res.get("recommended/n-cpus"),
        devices=_inherited_devices(raw, entry, set()),
    )


def _own_or_inherited_resources(raw: dict[str, _Entry], entry: _Entry) -> dict[str, int]:
    seen = {entry.id}
    while entry.inherit_resources and entry.parents:
        parent = raw.get(entry.parents[0])
        if parent is None or parent.id in seen:
            break
        seen.add(parent.id)
        entry = parent
    return entry.resources


def _inherited_devices(raw: dict[str, _Entry], entry: _Entry, seen: set[str]) -> frozenset[str]:
    """Devices of the entry and its ancestors, minus those it marks unsupported."""
    seen.add(entry.id)
    devices = set(entry.devices)
    for parent_id in entry.parents:
        parent = raw.get(parent_id)
        if parent is not None and parent_id not in seen:
            devices |= _inherited_devices(raw, parent, seen)
    return frozenset(devices - entry.unsupported)


_MAJOR = re.compile(r"^[a-z][a-z-]*?\d+$")


def _major_release(db: OsinfoDb, key: str) -> OsVariant | None:
    """``rhel7`` -> ``rhel7.0``: the lowest ``key.N`` release, when ``key`` names a major one."""
    if not _MAJOR.match(key):
        return None
    minors = [
        (int(short_id.rsplit(".", 1)[1]), variant)
        for short_id, variant in db.by_short_id.items()
        if short_id.startswith(f"{key}.") and short_id[len(key) + 1 :].isdigit()
    ]
    return min(minors, key=lambda pair: pair[0])[1] if minors else None


def _unknown_variant(db: OsinfoDb, key: str) -> InvalidInput:
    close = difflib.get_close_matches(key, [*db.by_short_id, "generic"], n=5, cutoff=0.6)
    hint = f"; did you mean: {', '.join(close)}?" if close else ""
    message = f"unknown OS variant {key!r}{hint} (GET /v1/os-variants lists them)"
    return InvalidInput(
        message,
        errors=[{"field": "os_variant", "message": message}],
        suggestions=close,
    )


def _natural_key(variant: OsVariant) -> list[Any]:
    # virtinst's sort: alphabetical, but numbers descending so the newest release comes first.
    # re.split alternates text and digits, so ints only ever meet ints.
    return [-int(p) if p.isdigit() else p.lower() for p in re.split(r"([0-9]+)", variant.short_id)]

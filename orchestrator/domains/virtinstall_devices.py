"""One converter per virt-install device option: its value -> the matching part of a spec.

Each returns plain data for :class:`DomainSpec` to validate, so the rules stay in one place;
each rejects a sub-option it does not support by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator.domains.suboptions import (
    as_bool,
    as_number,
    need,
    option_error,
    split_suboptions,
)

_DISK_KEYS = (
    "path",
    "pool",
    "vol",
    "size",
    "format",
    "bus",
    "cache",
    "device",
    "readonly",
    "backing_store",
)


def disk_option(value: str, notes: list[str]) -> dict[str, Any] | None:
    """``--disk path=P[,size=G]``, ``pool=P,size=G`` or ``vol=POOL/NAME``; ``none``: no disk."""
    opt = "--disk"
    if value == "none":
        return None
    subs = split_suboptions(opt, value, _DISK_KEYS, positional=("path",))
    disk: dict[str, Any] = {"source": _disk_source(subs)}
    for key in ("format", "bus", "cache", "device"):
        if subs.get(key) is not None:
            disk[key] = subs[key]
    if "readonly" in subs:
        disk["readonly"] = as_bool(opt, "readonly", subs["readonly"])
    if subs.get("format") == "qcow":
        notes.append(
            "--disk format=qcow is the legacy QCOW version 1 format (driver type 'qcow'), as "
            "virt-install writes it; use format=qcow2 for qcow2 images"
        )
    return disk


def _disk_source(subs: dict[str, str | None]) -> dict[str, Any]:
    opt = "--disk"
    given = [key for key in ("path", "pool", "vol") if key in subs]
    if len(given) != 1:
        raise option_error(opt, "give exactly one of path=, pool= or vol=")
    size_text = subs.get("size")
    size = as_number(opt, "size", size_text, float) if size_text else None
    backing = subs.get("backing_store")
    if backing is not None and (given[0] != "pool" or "/" in backing):
        raise option_error(
            opt, "backing_store must name a volume of the same pool, with pool=P,size=N"
        )
    if given[0] == "path":
        return {"type": "path", "path": need(opt, subs, "path"), "size_gib": size}
    if given[0] == "vol":
        if size is not None:
            raise option_error(opt, "vol= names an existing volume and takes no size")
        pool, sep, name = need(opt, subs, "vol").partition("/")
        if not sep:
            raise option_error(opt, "vol= must be POOL/VOLUME")
        return {"type": "volume", "pool": pool, "volume": name}
    if size is None:
        raise option_error(opt, "pool= creates a volume and needs size= (GiB)")
    return {
        "type": "new_volume",
        "pool": need(opt, subs, "pool"),
        "size_gib": size,
        "backing_volume": backing,
    }


def network_option(value: str) -> dict[str, Any] | None:
    """``--network``/``-w``: ``network=NAME``, ``bridge=NAME`` or ``none``; model= and mac=."""
    opt = "--network"
    known = ("type", "network", "bridge", "source", "model", "model.type", "mac", "mac.address")
    subs = split_suboptions(opt, value, known, positional=("type",))
    kind = subs.get("type")
    if kind == "none":
        return None
    for key in ("network", "bridge"):
        if key in subs:
            if kind not in (None, key):
                raise option_error(opt, f"type={kind} conflicts with {key}=")
            kind, subs["source"] = key, need(opt, subs, key)
    if kind not in ("network", "bridge"):
        raise option_error(opt, f"type {kind!r} is not supported; use network=, bridge= or none")
    nic: dict[str, Any] = {"type": kind, "source": need(opt, subs, "source")}
    model = subs.get("model") or subs.get("model.type")
    mac = subs.get("mac") or subs.get("mac.address")
    if model:
        nic["model"] = model
    if mac:
        nic["mac"] = mac
    return nic


def graphics_option(value: str) -> dict[str, Any]:
    """``--graphics vnc|spice|none[,listen=ADDR][,port=N][,password=SECRET|password_file=PATH]``.

    ``password_file`` names a file on the hypervisor; ``password`` only renders XML locally.
    """
    opt = "--graphics"
    known = ("type", "listen", "port", "password", "password_file")
    subs = split_suboptions(opt, value, known, positional=("type",))
    graphics: dict[str, Any] = {"type": subs.get("type") or "vnc"}
    if subs.get("listen"):
        graphics["listen"] = subs["listen"]
    if subs.get("port"):
        port = int(as_number(opt, "port", subs["port"] or ""))
        if port != -1:  # -1 is virt-install's "pick a free port"
            graphics["port"] = port
    for key in ("password", "password_file"):
        if subs.get(key) is not None:
            graphics[key] = subs[key]
    return graphics


def serial_option(value: str) -> dict[str, Any]:
    """``--serial pty`` or ``--serial file,path=P``."""
    opt = "--serial"
    subs = split_suboptions(opt, value, ("type", "path", "source.path"), positional=("type",))
    serial: dict[str, Any] = {"type": subs.get("type") or "pty"}
    path = subs.get("path") or subs.get("source.path")
    if path:
        serial["path"] = path
    return serial


def boot_option(value: str, spec: dict[str, Any]) -> None:
    """``--boot cdrom,hd,network`` (order) or ``--boot kernel=K,initrd=I,kernel_args=A``."""
    opt = "--boot"
    devices = ("hd", "cdrom", "network", "fd")
    cmdline_keys = ("kernel_args", "extra_args", "cmdline")
    known = (*devices, "kernel", "initrd", *cmdline_keys)
    subs = split_suboptions(opt, value, known, comma_keys=("kernel", "initrd", *cmdline_keys))
    order = [key for key in subs if key in devices]
    for dev in order:
        if subs[dev] is not None:
            raise option_error(opt, f"{dev} is a boot device and takes no value")
    if order:
        spec["boot_order"] = order
    cmdlines = [subs[key] for key in cmdline_keys if key in subs]
    if len(cmdlines) > 1:
        raise option_error(opt, "give the kernel command line once (kernel_args=)")
    if "kernel" in subs:
        spec["kernel"] = {
            "kernel": need(opt, subs, "kernel"),
            "initrd": subs.get("initrd"),
            "cmdline": cmdlines[0] if cmdlines else None,
        }
    elif "initrd" in subs or cmdlines:
        raise option_error(opt, "initrd= and kernel_args= need kernel=")


def cloud_init_option(value: str | None, files: Mapping[str, str]) -> dict[str, Any]:
    """``--cloud-init user-data=P,meta-data=P,network-config=P,clouduser-ssh-key=P``.

    The paths name files sent with the request (``files``), never files on this machine.
    """
    opt = "--cloud-init"
    key_names = ("clouduser-ssh-key", "ssh-key")
    known = ("user-data", "meta-data", "network-config", *key_names)
    subs = split_suboptions(opt, value or "", known)
    contents = {key: _attached(opt, key, need(opt, subs, key), files) for key in subs}
    cloud_init: dict[str, Any] = {}
    for key, field in (
        ("user-data", "user_data"),
        ("meta-data", "meta_data"),
        ("network-config", "network_config"),
    ):
        if key in contents:
            cloud_init[field] = contents[key]
    keys = [line for k in key_names if k in contents for line in _key_lines(contents[k])]
    if keys:
        cloud_init["ssh_authorized_keys"] = keys
    return cloud_init


def _attached(option: str, key: str, path: str, files: Mapping[str, str]) -> str:
    if path not in files:
        raise option_error(option, f"{key}={path!r}: that file was not sent with the request")
    return files[path]


def _key_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]

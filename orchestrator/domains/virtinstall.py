"""Read a ``virt-install`` command line into a :class:`DomainSpec`.

Takes virt-install's own syntax (``--opt value`` and ``--opt=value``, short aliases, the
``key=value,...`` sub-options) for the options this service supports. Every other option is
rejected by name, never ignored. The result carries notes (deprecated options, legacy formats)
for the job to report.
"""

from __future__ import annotations

import os.path
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

from orchestrator.domains.spec import CpuSpec, DomainSpec
from orchestrator.domains.suboptions import as_number, option_error, split_suboptions
from orchestrator.domains.virtinstall_devices import (
    boot_option,
    cloud_init_option,
    disk_option,
    graphics_option,
    network_option,
    serial_option,
)
from orchestrator.errors import InvalidInput
from orchestrator.kinds.registry import validation_errors


@dataclass(frozen=True)
class VirtInstallFlags:
    """What the command asks beside the domain itself."""

    print_xml: bool = False
    dry_run: bool = False
    noautoconsole: bool = False
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Option:
    name: str
    aliases: tuple[str, ...] = ()
    arity: Literal["flag", "value", "optional"] = "value"
    repeatable: bool = False


OPTIONS = (
    _Option("--name", ("-n",)),
    _Option("--uuid", ("-u",)),
    _Option("--memory"),
    _Option("--ram", ("-r",)),
    _Option("--vcpus"),
    _Option("--cpuset"),
    _Option("--cpu"),
    _Option("--disk", repeatable=True),
    _Option("--cdrom", ("-c",)),
    _Option("--import", arity="flag"),
    _Option("--pxe", arity="flag"),
    _Option("--boot"),
    _Option("--network", ("-w",), repeatable=True),
    _Option("--graphics"),
    _Option("--serial", repeatable=True),
    _Option("--os-type"),
    _Option("--os-variant", ("--osinfo",)),
    _Option("--virt-type"),
    _Option("--noautoconsole", arity="flag"),
    _Option("--autostart", arity="flag"),
    _Option("--noreboot", arity="flag"),
    _Option("--print-xml", arity="flag"),
    _Option("--dry-run", arity="flag"),
    _Option("--cloud-init", arity="optional"),
)
_BY_NAME = {name: opt for opt in OPTIONS for name in (opt.name, *opt.aliases)}
# Options virt-install has that get a specific answer rather than the generic rejection.
_EXPLAINED = {
    "--location": "network tree installs are not supported; use --cdrom with the ISO, or "
    "--boot kernel=...,initrd=...",
    "-l": "network tree installs are not supported; use --cdrom with the ISO",
    "--connect": "the hypervisor is chosen by the job's placement, not by a URI",
    "--extra-args": "use --boot kernel=...,initrd=...,kernel_args=...",
    "-x": "use --boot kernel=...,initrd=...,kernel_args=...",
}
# DomainSpec fields -> the option that sets them, to name options in validation errors.
_FIELD_OPTION = {
    "name": "--name",
    "uuid": "--uuid",
    "memory_mib": "--memory",
    "vcpus": "--vcpus",
    "cpuset": "--vcpus",
    "cpu": "--cpu",
    "disks": "--disk",
    "cdrom": "--cdrom",
    "boot_source": "--import",
    "kernel": "--boot",
    "boot_order": "--boot",
    "networks": "--network",
    "graphics": "--graphics",
    "serials": "--serial",
    "os_variant": "--os-variant",
    "virt_type": "--virt-type",
    "cloud_init": "--cloud-init",
}


def parse_virt_install_command(
    command: str, *, files: Mapping[str, str] | None = None
) -> tuple[DomainSpec, VirtInstallFlags]:
    """Like :func:`parse_virt_install`, from one shell-quoted string."""
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise InvalidInput(
            f"cannot split the command: {exc}", errors=[{"field": "command", "message": str(exc)}]
        ) from None
    return parse_virt_install(argv, files=files)


def parse_virt_install(
    argv: Sequence[str], *, files: Mapping[str, str] | None = None
) -> tuple[DomainSpec, VirtInstallFlags]:
    """The domain and flags of a virt-install argv (``argv[0]`` may be ``virt-install``).

    ``files`` holds the contents of files the command names (``--cloud-init user-data=P``),
    sent with the request; nothing is read from this machine's disk.
    """
    args = list(argv)
    if args and os.path.basename(args[0]) == "virt-install":
        args = args[1:]
    given = _tokenize(args)
    notes: list[str] = []
    spec = _spec_data(given, notes, files or {})
    flags = VirtInstallFlags(
        print_xml="--print-xml" in given,
        dry_run="--dry-run" in given,
        noautoconsole="--noautoconsole" in given,
        notes=tuple(notes),
    )
    return _validated(spec), flags


def _tokenize(args: list[str]) -> dict[str, list[str | None]]:
    """Option name -> values, in order; every option is checked against the table."""
    given: dict[str, list[str | None]] = {}
    while args:
        token = args.pop(0)
        if not token.startswith("-") or token == "-":
            raise InvalidInput(
                f"unexpected argument {token!r}: virt-install takes only options",
                errors=[{"field": token, "message": "not an option"}],
            )
        name, sep, inline = token.partition("=")
        opt = _lookup(name)
        value: str | None = inline if sep else None
        if opt.arity == "flag" and sep:
            raise option_error(opt.name, "takes no value")
        if opt.arity != "flag" and not sep and args and _is_value(args[0], opt):
            value = args.pop(0)
        if opt.arity == "value" and value is None:
            raise option_error(opt.name, "needs a value")
        if opt.name in given and not opt.repeatable:
            raise option_error(opt.name, "given more than once")
        given.setdefault(opt.name, []).append(value)
    return given


def _lookup(name: str) -> _Option:
    if name in _BY_NAME:
        return _BY_NAME[name]
    reason = _EXPLAINED.get(name, "this service does not support it")
    message = f"unsupported virt-install option {name}: {reason}"
    raise InvalidInput(message, errors=[{"field": name, "message": message}])


def _is_value(token: str, opt: _Option) -> bool:
    # A required value may start with '-' (a name like "-x" is then refused by the spec);
    # an optional one is taken only when it is not the next option.
    return opt.arity == "value" or not token.startswith("-")


def _spec_data(
    given: dict[str, list[str | None]], notes: list[str], files: Mapping[str, str]
) -> dict[str, Any]:
    def one(name: str) -> str | None:
        return given[name][0] if name in given else None

    spec: dict[str, Any] = {"name": one("--name"), "uuid": one("--uuid")}
    spec["memory_mib"] = _memory(one("--memory"), one("--ram"), notes)
    _vcpus(one("--vcpus"), one("--cpuset"), spec, notes)
    if "--cpu" in given:
        spec["cpu"] = _cpu(one("--cpu") or "")
    disks = [disk_option(v or "", notes) for v in given.get("--disk", [])]
    spec["disks"] = [d for d in disks if d is not None]
    if "--cdrom" in given:
        spec["cdrom"] = {"type": "path", "path": one("--cdrom")}
    if "--boot" in given:
        boot_option(one("--boot") or "", spec)
    spec["boot_source"] = _boot_source(given, spec)
    if "--network" in given:
        nics = [network_option(v or "") for v in given["--network"]]
        spec["networks"] = [nic for nic in nics if nic is not None]
    if "--graphics" in given:
        spec["graphics"] = graphics_option(one("--graphics") or "")
    spec["serials"] = [serial_option(v or "") for v in given.get("--serial", [])]
    _os_options(one("--os-type"), one("--os-variant"), spec, notes)
    if "--virt-type" in given:
        spec["virt_type"] = one("--virt-type")
    if "--cloud-init" in given:
        spec["cloud_init"] = cloud_init_option(one("--cloud-init"), files)
    spec["autostart"] = "--autostart" in given
    spec["reboot_after_install"] = "--noreboot" not in given
    if spec["name"] is None:
        raise option_error("--name", "is required")
    return {key: val for key, val in spec.items() if val is not None}


def _memory(memory: str | None, ram: str | None, notes: list[str]) -> int:
    if memory is not None and ram is not None:
        raise option_error("--memory", "give --memory or --ram, not both")
    if ram is not None:
        notes.append("--ram/-r is deprecated in virt-install; use --memory")
        return int(as_number("--ram", "ram", ram))
    if memory is None:
        raise option_error("--memory", "is required (MiB)")
    subs = split_suboptions("--memory", memory, ("memory",), positional=("memory",))
    if not subs.get("memory"):
        raise option_error("--memory", "needs the size in MiB (--memory 1024)")
    return int(as_number("--memory", "memory", subs["memory"] or ""))


def _vcpus(vcpus: str | None, cpuset: str | None, spec: dict[str, Any], notes: list[str]) -> None:
    subs: dict[str, str | None] = {}
    if vcpus is not None:
        known = ("vcpu", "vcpus", "cpuset")
        subs = split_suboptions(
            "--vcpus", vcpus, known, positional=("vcpu",), comma_keys=("cpuset",)
        )
    count = subs.get("vcpu") or subs.get("vcpus")
    if count:
        spec["vcpus"] = int(as_number("--vcpus", "vcpus", count))
    if cpuset is not None:
        if subs.get("cpuset"):
            raise option_error("--cpuset", "conflicts with --vcpus cpuset=")
        notes.append("--cpuset is deprecated in virt-install; use --vcpus N,cpuset=...")
        subs["cpuset"] = cpuset
    if subs.get("cpuset"):
        spec["cpuset"] = subs["cpuset"]


def cpu_from_setting(value: str) -> CpuSpec:
    """A hypervisor's ``cpu_mode`` setting in ``--cpu`` syntax (``qemu64,-svm``) as a CpuSpec."""
    try:
        return CpuSpec.model_validate(_cpu(value))
    except ValidationError as exc:
        raise InvalidInput(
            f"cpu_mode {value!r} is not a valid --cpu value",
            errors=validation_errors(exc, prefix="cpu_mode"),
        ) from None


def _cpu(value: str) -> dict[str, Any]:
    """``--cpu host-passthrough|host-model|host|MODEL[,-feature][,disable=feature]``."""
    opt = "--cpu"
    pieces = [p for p in value.split(",") if p]
    disabled = [p[1:] for p in pieces if p.startswith("-")]
    if any(p.startswith("+") for p in pieces):
        raise option_error(opt, "required features (+name) are not supported; only -name")
    rest = ",".join(p for p in pieces if not p.startswith("-"))
    subs = split_suboptions(opt, rest, ("model", "mode", "disable"), positional=("model",))
    if subs.get("disable"):
        disabled.append(subs["disable"] or "")
    mode, model = subs.get("mode"), subs.get("model")
    if model in ("host-passthrough", "host-model", "host"):
        mode, model = ("host-model" if model == "host" else model), None
    elif model:
        mode = mode or "custom"
    if mode is None:
        raise option_error(opt, "give a model (qemu64), host-model or host-passthrough")
    return {"mode": mode, "model": model, "disabled_features": disabled}


def _boot_source(given: dict[str, list[str | None]], spec: dict[str, Any]) -> str:
    methods = [
        source
        for source, present in (
            ("cdrom", "--cdrom" in given),
            ("import", "--import" in given and "kernel" not in spec),
            ("pxe", "--pxe" in given),
            ("kernel", "kernel" in spec),
        )
        if present
    ]
    if len(methods) > 1:
        raise option_error("--import", f"give one install method, got {', '.join(methods)}")
    if not methods:
        raise option_error(
            "--import", "give an install method: --cdrom, --import, --pxe or --boot kernel=..."
        )
    return methods[0]


def _os_options(
    os_type: str | None, variant: str | None, spec: dict[str, Any], notes: list[str]
) -> None:
    if os_type is not None:
        notes.append("--os-type is deprecated and does nothing in virt-install; it was ignored")
    if variant is None:
        return
    subs = split_suboptions(
        "--os-variant", variant, ("name", "short-id", "id"), positional=("name",)
    )
    values = [val for val in subs.values() if val]
    if len(values) != 1:
        raise option_error("--os-variant", "give one OS name (--os-variant rhel9.0)")
    spec["os_variant"] = values[0]


def _validated(spec: dict[str, Any]) -> DomainSpec:
    try:
        return DomainSpec.model_validate(spec)
    except ValidationError as exc:
        errors = validation_errors(exc)
        for error in errors:
            error["message"] = error["message"].removeprefix("Value error, ")
            top = error["field"].split(".")[0]
            error["option"] = _FIELD_OPTION.get(top, "virt-install")
        first = errors[0]
        raise InvalidInput(
            f"{first['option']}: {first['field']}: {first['message']}", errors=errors
        ) from None

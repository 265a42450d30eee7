"""Our parser and XML builder against ``virt-install --print-xml --dry-run`` on the same commands.

Both XMLs are reduced by ``tests.domains.summary.summarize`` (which lists what it leaves out and
why) and must agree. One more difference is deliberate and blanked here: when a command gives no
``--graphics``, virt-install picks SPICE (this QEMU has it); we default to VNC, which every QEMU
build and web console supports.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from orchestrator.domains.domxml import HostDefaults, fill_defaults, render_domain_xml
from orchestrator.domains.domxml.os_boot import Phase
from orchestrator.domains.osinfo import resolve_os_variant
from orchestrator.domains.spec import CpuSpec
from orchestrator.domains.virtinstall import parse_virt_install
from tests.domains.corpus import COMMANDS, FILES
from tests.domains.summary import summarize, without_random_macs

pytestmark = [
    pytest.mark.libvirtd,
    pytest.mark.skipif(not shutil.which("virt-install"), reason="virtinst is not installed"),
]


def _virt_install_xml(uri: str, argv: list[str]) -> list[str]:
    """virt-install's XML documents: install phase first when there is one, then final."""
    # Without the variable virt-install refuses commands lacking --osinfo; ours default generic.
    env = {**os.environ, "VIRTINSTALL_OSINFO_DISABLE_REQUIRE": "1"}
    run = subprocess.run(
        ["virt-install", "--connect", uri, "--print-xml", "--dry-run", "--noautoconsole", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    return [doc + "</domain>" for doc in run.stdout.split("</domain>") if doc.strip()]


def _our_xml(argv: list[str], pool: str, directory: Path) -> list[str]:
    spec, _ = parse_virt_install(argv)
    variant = resolve_os_variant(spec.os_variant or "generic").variant
    # What the job would probe from the files; virt-install reads it through the pool.
    known = {
        key: fmt
        for name, fmt in FILES.items()
        if fmt
        for key in (f"{directory}/{name}", f"{pool}/{name}")
    }
    # virt-install's default CPU on KVM is host-passthrough; a hypervisor setting gives ours.
    host = HostDefaults(cpu=CpuSpec(mode="host-passthrough"), known_formats=known)
    resolved = fill_defaults(spec, variant, host)
    phases: list[Phase] = ["install", "final"] if resolved.has_install_phase else ["final"]
    return [render_domain_xml(resolved, phase=p, reveal_secrets=True) for p in phases]


def _compared(xml: str, argv: list[str], pool: str, directory: Path) -> dict[str, Any]:
    spec, _ = parse_virt_install(argv)
    summary = without_random_macs(
        summarize(xml, {pool: str(directory)}), {n.mac for n in spec.networks if n.mac}
    )
    if not any(arg.startswith("--graphics") for arg in argv):
        summary["graphics"] = [{**g, "type": "default"} for g in summary["graphics"]]
    return summary


def test_corpus_is_large_enough() -> None:
    assert len(COMMANDS) >= 15


def test_same_domain_as_virt_install(qemu_uri: str, oracle_pool: tuple[str, Path]) -> None:
    pool, directory = oracle_pool
    argvs = {key: shlex.split(cmd.format(d=directory, p=pool)) for key, cmd in COMMANDS.items()}
    with ThreadPoolExecutor(max_workers=4) as workers:
        runs = workers.map(lambda argv: _virt_install_xml(qemu_uri, argv), argvs.values())
        theirs = dict(zip(argvs, runs, strict=True))
    mismatches = {}
    for key, argv in argvs.items():
        ours = _our_xml(argv, pool, directory)
        assert len(ours) == len(theirs[key]), f"{key}: number of phases differs"
        for phase, (mine, other) in enumerate(zip(ours, theirs[key], strict=True)):
            a, b = (_compared(x, argv, pool, directory) for x in (mine, other))
            if a != b:
                mismatches[f"{key}[{phase}]"] = {k: (a[k], b[k]) for k in a if a[k] != b[k]}
    assert not mismatches, mismatches

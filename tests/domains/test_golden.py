"""Rendered domain XML for a spread of specs, compared with golden files.

A missing or different golden file fails; ``REGEN_GOLDEN=1`` rewrites them and fails too, so a
regenerating run never counts as a pass. The golden files are checked against libvirt itself:
each is defined on a private test:///default hypervisor and libvirt's dump must keep what we
wrote, mean the same, and hold what the spec asked for (``tests.domains.libvirt_oracle``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import libvirt
import pytest

from orchestrator.domains.domxml import HostDefaults, fill_defaults, render_domain_xml
from orchestrator.domains.osinfo import resolve_os_variant
from orchestrator.domains.spec import CpuSpec, DomainSpec
from tests.domains.conftest import GOLDEN_DIR, REGENERATE
from tests.domains.libvirt_oracle import (
    libvirt_view,
    lost_in_libvirt,
    semantic_differences,
    unmet_requests,
)

NESTED_KVM_CPU = CpuSpec(mode="custom", model="qemu64", disabled_features=("svm",))
UUID = "8f0d3a52-6f0e-4a54-9a3b-0d6e2b9b1a11"


def _spec(**fields: Any) -> dict[str, Any]:
    return {"memory_mib": 1024, "uuid": UUID, **fields}


SPECS: dict[str, tuple[dict[str, Any], HostDefaults]] = {
    "cdrom_install_rhel7": (
        _spec(
            name="c73",
            vcpus=1,
            boot_source="cdrom",
            cdrom={"type": "path", "path": "/var/lib/libvirt/boot/CentOS-7.iso"},
            disks=[
                {
                    "source": {
                        "type": "path",
                        "path": "/var/lib/libvirt/images/c73.qcow2",
                        "size_gib": 6,
                    },
                    "format": "qcow",
                }
            ],
            graphics={"type": "vnc", "listen": "0.0.0.0"},
            os_variant="rhel7",
        ),
        HostDefaults(cpu=NESTED_KVM_CPU),
    ),
    "import_volume_debian11_q35": (
        _spec(
            name="deb",
            boot_source="import",
            disks=[{"source": {"type": "volume", "pool": "default", "volume": "deb.qcow2"}}],
            os_variant="debian11",
            serials=[{"type": "pty"}],
            graphics={"type": "none"},
        ),
        HostDefaults(known_formats={"default/deb.qcow2": "qcow2"}),
    ),
    "new_overlay_volume": (
        _spec(
            name="ovl",
            boot_source="import",
            disks=[
                {
                    "source": {
                        "type": "new_volume",
                        "pool": "vms",
                        "size_gib": 20,
                        "backing_volume": "debian11-base.qcow2",
                    },
                }
            ],
            os_variant="debian11",
            cpu={"mode": "host-passthrough"},
        ),
        HostDefaults(cpu=NESTED_KVM_CPU),
    ),
    "kernel_boot_escaped_cmdline": (
        _spec(
            name="kern",
            vcpus=2,
            cpuset="1-3,^2",
            boot_source="kernel",
            kernel={
                "kernel": "/boot/vmlinuz",
                "initrd": "/boot/initrd.img",
                "cmdline": "console=ttyS0 note=\"a<b & c>d\" 'q'",
            },
            disks=[
                {
                    "source": {"type": "path", "path": "/srv/kern.raw"},
                    "bus": "sata",
                    "cache": "none",
                }
            ],
            networks=[],
            serials=[{"type": "file", "path": "/var/log/kern-serial.log"}],
        ),
        HostDefaults(),
    ),
    "pxe_install_two_nics": (
        _spec(
            name="pxe01",
            boot_source="pxe",
            disks=[{"source": {"type": "new_volume", "pool": "default", "size_gib": 8}}],
            networks=[
                {"type": "network", "source": "provisioning", "mac": "52:54:00:AA:00:01"},
                {"type": "bridge", "source": "br0", "model": "e1000e"},
            ],
            os_variant="fedora37",
        ),
        HostDefaults(cpu=CpuSpec(mode="host-model")),
    ),
    "windows10_keeps_media": (
        _spec(
            name="w10",
            memory_mib=4096,
            boot_source="cdrom",
            cdrom={"type": "volume", "pool": "isos", "volume": "Win10.iso"},
            disks=[{"source": {"type": "new_volume", "pool": "default", "size_gib": 64}}],
            os_variant="win10",
        ),
        HostDefaults(),
    ),
    "windows_xp_legacy_bus": (
        _spec(
            name="wxp",
            memory_mib=512,
            boot_source="import",
            disks=[{"source": {"type": "path", "path": "/srv/wxp.raw"}}],
            os_variant="winxp",
            graphics={"type": "vnc", "port": 5911},
        ),
        HostDefaults(),
    ),
    "spice_password_hidden": (
        _spec(
            name="spicy",
            boot_source="import",
            disks=[{"source": {"type": "path", "path": "/srv/spicy.qcow2"}, "format": "qcow2"}],
            os_variant="ubuntu22.04",
            graphics={"type": "spice", "listen": "127.0.0.1", "password": "n0t-in-output"},
        ),
        HostDefaults(),
    ),
    "cloud_init_seed_cdrom": (
        _spec(
            name="cloud1",
            boot_source="import",
            disks=[
                {
                    "source": {
                        "type": "new_volume",
                        "pool": "default",
                        "size_gib": 10,
                        "backing_volume": "jammy.qcow2",
                    }
                }
            ],
            os_variant="ubuntu22.04",
            cloud_init={"ssh_authorized_keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5 ops@example"]},
            graphics={"type": "none"},
            serials=[{"type": "pty"}],
        ),
        HostDefaults(cpu=NESTED_KVM_CPU),
    ),
    "generic_tcg_many_disks": (
        _spec(
            name="gen",
            virt_type="qemu",
            boot_source="import",
            boot_order=["hd", "cdrom", "network"],
            disks=[
                {"source": {"type": "path", "path": "/srv/a.raw"}},
                {
                    "source": {"type": "path", "path": "/srv/b.qcow2"},
                    "format": "qcow2",
                    "bus": "scsi",
                },
                {"source": {"type": "path", "path": "/srv/tools.iso"}, "device": "cdrom"},
                {"source": {"type": "path", "path": "/srv/ro.raw"}, "readonly": True, "bus": "usb"},
            ],
            os_variant="generic",
        ),
        HostDefaults(cpu=NESTED_KVM_CPU),
    ),
    "no_os_variant_defaults": (
        _spec(
            name="plain",
            boot_source="import",
            disks=[{"source": {"type": "path", "path": "/srv/plain.img"}}],
            networks=[{"source": "default", "model": "virtio"}],
        ),
        HostDefaults(domain_type="qemu", machines=("pc",)),
    ),
}


def _render_all(name: str) -> dict[str, str]:
    raw, host = SPECS[name]
    spec = DomainSpec.model_validate(raw)
    variant = resolve_os_variant(spec.os_variant or "generic").variant
    resolved = fill_defaults(spec, variant, host)
    out = {f"{name}.xml": render_domain_xml(resolved)}
    if resolved.has_install_phase:
        out[f"{name}.install.xml"] = render_domain_xml(resolved, phase="install")
    return out


def _golden_text(file_name: str) -> str:
    golden = GOLDEN_DIR / file_name
    if not golden.exists():
        pytest.fail(
            f"golden file {golden} is missing: write it with "
            f"`{REGENERATE}`, review the new file and commit it",
            pytrace=False,
        )
    return golden.read_text()


@pytest.mark.parametrize("name", sorted(SPECS))
def test_rendered_xml_matches_golden_file(name: str, regen_golden: bool) -> None:
    rendered = _render_all(name)
    if regen_golden:
        changed = [f for f, xml in rendered.items() if _write_if_changed(GOLDEN_DIR / f, xml)]
        # A regenerating run proves nothing about the output, so it must not pass.
        pytest.fail(
            f"regenerated {', '.join(rendered)} (changed: {', '.join(changed) or 'none'}); "
            "review the diff and re-run without REGEN_GOLDEN",
            pytrace=False,
        )
    for file_name, xml in rendered.items():
        assert xml == _golden_text(file_name), f"{file_name} changed; `{REGENERATE}` to accept"


def _write_if_changed(path: Path, text: str) -> bool:
    if path.exists() and path.read_text() == text:
        return False
    path.write_text(text)
    return True


def _golden_files(name: str) -> tuple[str, str | None]:
    """The golden final and install-phase XML of a spec (None when it has no install phase)."""
    install = f"{name}.install.xml"
    return _golden_text(f"{name}.xml"), (
        _golden_text(install) if install in _render_all(name) else None
    )


@pytest.mark.parametrize("name", sorted(SPECS))
def test_libvirt_reads_each_golden_file_as_written(
    name: str, test_conn: libvirt.virConnect
) -> None:
    for xml in filter(None, _golden_files(name)):
        theirs = libvirt_view(test_conn, xml)
        assert lost_in_libvirt(xml, theirs) == []
        assert semantic_differences(xml, theirs) == {}


@pytest.mark.parametrize("name", sorted(SPECS))
def test_libvirts_reading_of_each_golden_file_holds_what_the_spec_asked(
    name: str, test_conn: libvirt.virConnect
) -> None:
    raw, host = SPECS[name]
    final, install = (x and libvirt_view(test_conn, x) for x in _golden_files(name))
    assert final is not None
    assert unmet_requests(raw, host, final, install) == []


def test_every_golden_file_belongs_to_a_spec() -> None:
    expected = {f for name in SPECS for f in _render_all(name)}
    present = {p.name for p in Path(GOLDEN_DIR).glob("*.xml")}
    assert sorted(present - expected) == [], "golden files of no spec: remove them"
    assert sorted(expected - present) == [], f"golden files missing: `{REGENERATE}` writes them"


def test_shown_xml_hides_the_password_and_libvirts_copy_has_it() -> None:
    raw, host = SPECS["spice_password_hidden"]
    spec = DomainSpec.model_validate(raw)
    resolved = fill_defaults(spec, resolve_os_variant("ubuntu22.04").variant, host)
    assert "n0t-in-output" not in render_domain_xml(resolved)
    assert 'passwd="n0t-in-output"' in render_domain_xml(resolved, reveal_secrets=True)
    assert "n0t-in-output" not in repr(spec) and "n0t-in-output" not in spec.model_dump_json()


def test_markup_in_values_is_escaped_not_interpreted() -> None:
    xml = _golden_text("kernel_boot_escaped_cmdline.xml")
    assert "<cmdline>console=ttyS0 note=\"a&lt;b &amp; c&gt;d\" 'q'</cmdline>" in xml

"""OS variants read from osinfo-db agree with virt-install's view of the same database."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import pytest

from orchestrator.domains.osinfo import (
    GENERIC,
    list_os_variants,
    load_osinfo_db,
    resolve_os_variant,
)
from orchestrator.errors import InvalidInput

# Asks virtinst (with libosinfo) the questions our defaults answer, for every variant.
_VIRTINST_PROBE = """
import json, sys
sys.path.insert(0, "/usr/share/virt-manager")
from virtinst.osdict import OSDB
out = {}
for v in OSDB.list_os():
    if v.is_generic():
        continue
    res = v.get_recommended_resources()
    out[v.full_id] = {
        "names": v.all_names,
        "virtio_disk": v.supports_virtiodisk(),
        "virtio_net": v.supports_virtionet(),
        "q35": v.supports_chipset_q35(),
        "usb3": v.supports_usb3(),
        "netmodels": v.supported_netmodels(),
        "vcpus": res.get_recommended_ncpus("x86_64"),
    }
print(json.dumps(out))
"""


def test_short_id_and_libosinfo_id_name_the_same_variant() -> None:
    by_short = resolve_os_variant("rhel7.0")
    by_id = resolve_os_variant("http://redhat.com/rhel/7.0")
    assert by_short.variant == by_id.variant
    assert by_short.variant.id == "http://redhat.com/rhel/7.0"
    assert by_short.variant.default_disk_bus("pc") == "virtio"
    assert by_short.variant.default_nic_model("pc") == "virtio"
    assert not by_short.substituted


def test_bare_major_release_resolves_to_its_first_minor_and_says_so() -> None:
    resolution = resolve_os_variant("rhel7")
    assert resolution.variant.short_id == "rhel7.0"
    assert resolution.substituted


def test_alias_short_id_is_not_a_substitution() -> None:
    resolution = resolve_os_variant("centos7")
    assert resolution.variant.id == "http://centos.org/centos/7.0"
    assert not resolution.substituted


def test_generic_and_none_mean_no_os_metadata() -> None:
    assert resolve_os_variant("generic").variant is GENERIC
    assert resolve_os_variant("none").variant is GENERIC
    assert GENERIC.default_disk_bus("pc") == "ide"


def test_unknown_variant_is_422_naming_os_variant_with_suggestions() -> None:
    with pytest.raises(InvalidInput) as caught:
        resolve_os_variant("ubunto22.04")
    problem = caught.value.to_problem()
    assert problem["status"] == 422
    assert problem["errors"][0]["field"] == "os_variant"
    assert "ubuntu22.04" in problem["suggestions"]
    assert "ubuntu22.04" in problem["detail"]


@pytest.mark.skipif(not shutil.which("virt-install"), reason="virtinst is not installed")
def test_list_matches_virt_install_osinfo_list() -> None:
    out = subprocess.run(
        ["virt-install", "--osinfo", "list"], capture_output=True, text=True, check=True
    ).stdout
    theirs = [line for line in out.splitlines() if line and not line.startswith(("You", "  "))]
    ours = [", ".join(sorted(set(v.short_ids))) for v in list_os_variants()]
    assert ours == theirs


def test_summary_lists_what_the_api_shows() -> None:
    summary = resolve_os_variant("debian11").variant.summary()
    assert summary["short_id"] == "debian11"
    assert summary["virtio_disk"] is True
    assert summary["recommended_vcpus"] == 2


def _virtinst_view() -> dict[str, dict[str, Any]]:
    if shutil.which("virt-install") is None:
        pytest.skip("virtinst is not installed")
    # virt-install runs on the system Python with virtinst beside it; so does the probe.
    probe = subprocess.run(
        ["/usr/bin/python3", "-c", _VIRTINST_PROBE],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if probe.returncode != 0:
        # virtinst is installed, so a failing probe is a broken probe or install, not a reason
        # to skip.
        pytest.fail(f"the virtinst probe exited {probe.returncode}:\n{probe.stderr}", pytrace=False)
    return json.loads(probe.stdout)


def test_every_variant_gets_virtinst_device_defaults() -> None:
    theirs = _virtinst_view()
    db = load_osinfo_db()
    assert set(theirs) == set(db.by_id)
    for os_id, expected in theirs.items():
        variant = db.by_id[os_id]
        machine = "q35" if expected["q35"] else "pc"
        got = {
            "names": sorted(set(variant.short_ids)),
            "virtio_disk": variant.supports_virtio_disk,
            "virtio_net": variant.supports_virtio_net,
            "q35": variant.supports_q35,
            "usb3": variant.supports_usb3,
            "vcpus": variant.recommended_vcpus,
        }
        want = {key: expected[key] for key in got}
        assert got == want, os_id
        if not expected["virtio_net"] and machine == "pc":
            models = expected["netmodels"]
            prefs = [m for m in ("e1000", "rtl8139", "ne2k_pci", "pcnet") if m in models]
            assert variant.default_nic_model("pc") == (prefs[0] if prefs else "e1000"), os_id

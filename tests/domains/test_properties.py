"""Property tests on what a job's text becomes: any value given as a domain's name, a kernel
command line, a disk path, a volume or pool name or a size is either refused as bad input
(``ValueError`` or pydantic's ``ValidationError``, which the API answers with 422) or comes out
exactly as given, in a document that parses, with no element or file name it did not ask for:
no XML injection, no path escape, no crash."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import PurePosixPath
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from orchestrator.domains.domxml import HostDefaults, fill_defaults, render_domain_xml
from orchestrator.domains.osinfo import resolve_os_variant
from orchestrator.domains.spec import DomainSpec
from orchestrator.storage.names import check_host_path, check_volume_name
from orchestrator.storage.sizes import MAX_SIZE, SECTOR, parse_size
from orchestrator.storage.volume_xml import VolumeDefinition, render_volume_xml

BOUNDED = settings(
    deadline=2000,
    max_examples=200,
    database=None,
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.too_slow],
)

# Text as hostile input comes: markup, quotes, control characters, path pieces, non-ASCII.
HOSTILE = st.text(
    st.one_of(
        st.sampled_from(list("<>&\"'/.\\-_ +:;=]![\x00\x01\x1f\x7f\n\t")),
        st.characters(codec="utf-8"),
    ),
    max_size=80,
)
PATHISH = st.lists(
    st.one_of(st.sampled_from(["", ".", "..", "etc", "shadow", "a b", "x<y"]), HOSTILE),
    max_size=5,
).map(lambda parts: "/" + "/".join(parts))


def _domain_xml(**fields: Any) -> ET.Element:
    spec = DomainSpec.model_validate({"memory_mib": 256, "boot_source": "import", **fields})
    variant = resolve_os_variant("generic").variant
    resolved = fill_defaults(spec, variant, HostDefaults(domain_type="qemu"))
    return ET.fromstring(render_domain_xml(resolved))


@BOUNDED
@given(name=HOSTILE)
def test_any_domain_name_is_refused_or_becomes_the_name_element_and_nothing_else(
    name: str,
) -> None:
    try:
        root = _domain_xml(name=name)
    except (ValueError, ValidationError):
        return
    assert [element.text for element in root.iter("name")] == [name]


@BOUNDED
@given(cmdline=HOSTILE, kernel=PATHISH)
def test_any_kernel_path_and_command_line_are_refused_or_kept_verbatim(
    cmdline: str, kernel: str
) -> None:
    boot = {"kernel": kernel, "cmdline": cmdline}
    try:
        root = _domain_xml(name="vm", boot_source="kernel", kernel_boot=boot)
    except (ValueError, ValidationError):
        return
    assert root.findtext("os/kernel") == kernel
    assert root.findtext("os/cmdline") == cmdline
    assert ".." not in PurePosixPath(kernel).parts


@BOUNDED
@given(path=PATHISH)
def test_any_disk_path_is_refused_or_absolute_normalized_and_kept(path: str) -> None:
    disks = [{"source": {"type": "path", "path": path}}]
    try:
        root = _domain_xml(name="vm", disks=disks)
    except (ValueError, ValidationError):
        return
    assert [source.get("file") for source in root.iter("source") if source.get("file")] == [path]
    assert path == os.path.normpath(path) and ".." not in path.split("/")


@BOUNDED
@given(name=HOSTILE)
def test_any_volume_name_is_refused_or_stays_one_file_name_inside_its_pool(name: str) -> None:
    try:
        check_volume_name(name)
    except ValueError:
        return
    inside = PurePosixPath("/pool") / name
    assert inside.parent == PurePosixPath("/pool") and inside.name == name
    xml = render_volume_xml(VolumeDefinition(name, 1024**2, "qcow2"))
    assert ET.fromstring(xml).findtext("name") == name


@BOUNDED
@given(path=PATHISH)
def test_any_host_path_is_refused_or_cannot_climb_out(path: str) -> None:
    try:
        check_host_path(path)
    except ValueError:
        return
    assert os.path.normpath(path) == path and ".." not in path.split("/")


SIZE_TEXT = st.one_of(
    HOSTILE,
    st.builds(
        lambda number, unit: f"{number}{unit}",
        st.one_of(
            st.integers(min_value=-(2**70), max_value=2**70).map(str),
            st.decimals(allow_nan=False, allow_infinity=False, places=3).map(str),
            st.sampled_from(["0x200", "0x", "1e3", ".5", "1.", " 1", "+1"]),
        ),
        st.sampled_from(["", "B", "K", "M", "G", "T", "P", "E", "k", "g", "GB", "GiB", " G", "X"]),
    ),
    st.integers(min_value=-(2**70), max_value=2**70),
)


@BOUNDED
@given(value=SIZE_TEXT)
def test_any_size_is_refused_or_a_positive_whole_number_of_sectors_up_to_1_eib(
    value: str | int,
) -> None:
    try:
        size = parse_size(value)
    except ValueError:
        return
    assert isinstance(size, int) and 0 < size <= MAX_SIZE and size % SECTOR == 0


@BOUNDED
@given(number=st.integers(min_value=1, max_value=2**20), unit=st.sampled_from("KMGT"))
def test_a_whole_number_with_a_unit_means_that_many_powers_of_1024(number: int, unit: str) -> None:
    expected = number * 1024 ** ("BKMGT".index(unit))
    if expected > MAX_SIZE or expected % SECTOR:
        return
    assert parse_size(f"{number}{unit}") == parse_size(f"{number}{unit.lower()}") == expected

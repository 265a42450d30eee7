"""Fixtures of the domain definition tests: golden-file regeneration and the oracle's pool.

Regenerate the golden XML files with ``REGEN_GOLDEN`` set to 1, as ``REGENERATE`` shows; that
run fails on purpose: review the diff, then run again without the variable.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest

from tests.domains.corpus import FILES

GOLDEN_DIR = Path(__file__).parent / "golden"
REGENERATE = "REGEN_GOLDEN=1 .venv/bin/pytest tests/domains/test_golden.py"


@pytest.fixture(scope="session")
def regen_golden() -> bool:
    return os.environ.get("REGEN_GOLDEN") == "1"


@pytest.fixture(scope="module")
def oracle_pool(
    qemu_uri: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path]]:
    """A directory pool holding the corpus' files, so virt-install finds (and makes) no other.

    Removed afterwards, with any pool virt-install made for the directory despite it.
    """
    directory = tmp_path_factory.mktemp("oracle")
    directory.chmod(0o755)
    _make_files(directory)
    name = f"orch-oracle-{os.getpid()}"
    conn = libvirt.open(qemu_uri)
    before = set(conn.listStoragePools()) | set(conn.listDefinedStoragePools())
    pool = conn.storagePoolCreateXML(_pool_xml(name, directory), 0)
    try:
        yield name, directory
    finally:
        pool.destroy()
        after = set(conn.listStoragePools()) | set(conn.listDefinedStoragePools())
        for stray in after - before - {name}:
            _remove_pool(conn.storagePoolLookupByName(stray))
        conn.close()


def _make_files(directory: Path) -> None:
    for file_name, fmt in FILES.items():
        path = directory / file_name
        if fmt in ("qcow2", "qcow"):
            subprocess.run(["qemu-img", "create", "-q", "-f", fmt, str(path), "64M"], check=True)
        else:
            path.write_bytes(b"\0" * 4096)


def _pool_xml(name: str, directory: Path) -> str:
    from xml.etree import ElementTree as ET

    pool = ET.Element("pool", type="dir")
    ET.SubElement(pool, "name").text = name
    ET.SubElement(ET.SubElement(pool, "target"), "path").text = str(directory)
    return ET.tostring(pool, encoding="unicode")


def _remove_pool(pool: libvirt.virStoragePool) -> None:
    if pool.isActive():
        pool.destroy()
    if pool.isPersistent():
        pool.undefine()

"""The boot-sector test image (:mod:`orchestrator.local.bootsector`) is a raw disk qemu can boot."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from orchestrator.local.bootsector import MARKER, MAX_MARKER, boot_sector, write_base_image


def test_the_boot_sector_is_512_bytes_with_the_boot_signature(tmp_path: Path) -> None:
    image = write_base_image(tmp_path / "base.img")
    data = image.read_bytes()
    assert len(data) == 512
    assert data[510:] == b"\x55\xaa"
    assert MARKER in data
    info = subprocess.run(
        ["qemu-img", "info", "--output=json", str(image)], capture_output=True, text=True
    )
    assert '"format": "raw"' in info.stdout


def test_a_larger_image_starts_with_the_boot_sector_and_reads_zeros_after(tmp_path: Path) -> None:
    image = write_base_image(tmp_path / "base.img", size=1024 * 1024)
    data = image.read_bytes()
    assert len(data) == 1024 * 1024
    assert data[:512] == boot_sector()
    assert data[512:] == bytes(len(data) - 512)


def test_sizes_off_the_sector_grid_and_overlong_markers_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="multiple of 512"):
        write_base_image(tmp_path / "base.img", size=1000)
    with pytest.raises(ValueError, match=f"at most {MAX_MARKER} bytes"):
        boot_sector(b"x" * (MAX_MARKER + 1))
    assert boot_sector(b"x" * MAX_MARKER)[510:] == b"\x55\xaa"

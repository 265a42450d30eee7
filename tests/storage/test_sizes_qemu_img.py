"""Size strings read as the real ``qemu-img create`` reads them: qemu-img is the oracle."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestrator.storage.sizes import SECTOR, parse_size, qemu_size

pytestmark = pytest.mark.skipif(
    not shutil.which("qemu-img"), reason="qemu-img is not installed (Debian package qemu-utils)"
)

SIZES = [
    # each unit letter, either case, with and without a number that needs rounding
    *["1", "512", "1b", "512B", "1k", "64K", "1m", "512M", "1g", "6G", "1t", "64T", "3p", "3P"],
    *["1e", "1E", "2E", "7E", "8E", "16E", "2048P", "8191P", "8192P"],
    # what qemu-img refuses as units
    *["1KB", "1kb", "1GB", "1GiB", "1Gi", "10MiB", "1GG", "5X", "5Q", "1.5kb"],
    # spaces and signs
    *["2 g", "2 G", " 2G", "\t2G", "2G ", "1 ", "+1G", "+0", "++2G", "+ 2G", "-1G", "-0", "-1"],
    # fractions
    *["1.5G", "1.5k", "1.3K", "0.5k", "0.2k", "12.345M", "3.14159M", "5.G", "1.k", "1.b"],
    *["5.", "1.0", "1.0b", "0.5", "1.5", "1.5b", ".5G", "1..5G", "1,5G", "1.5e", "1.5e3", "1.e5"],
    *["1.00000000001G", "0.0001k", "1.50000000000000000001k", "0.000000000000000000001E"],
    # zero, leading zeros, exponents, digit separators
    *["0", "0b", "0.0k", "010", "08", "0001G", "1e3", "1E3", "1_000", "abc", "", "+"],
    # hexadecimal: B and E are hex digits there, not units
    *["0x10", "0x1000", "0X200", "0x1b", "0x400e", "+0x10", " 0x200", "0x200 ", "0x", "00x10"],
    *["0x1.8", "0x7fffffffffffffff", "0xffffffffffffffff", "0x10000000000000000"],
    # at the edges of 64 bits
    *["9223372036854775807", "9223372036854775808", "18446744073709551615"],
    *["18446744073709551616", "17179869183G", "4294967296k"],
]


@dataclass(frozen=True)
class QemuImgReading:
    """What ``qemu-img create -f qcow2`` made of a size: None where it refused it as a size."""

    requested: int | None  # the bytes it read, as its "Formatting ... size=N" line says
    virtual_size: int | None  # of the image made, by ``qemu-img info``; None when none was made


def qemu_img_create(text: str, directory: Path) -> QemuImgReading:
    image = directory / "size.qcow2"
    made = subprocess.run(
        ["qemu-img", "create", "-f", "qcow2", "--", str(image), text],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        if "Invalid image size specified" in made.stderr:
            assert made.returncode != 0 and not image.exists()
            return QemuImgReading(None, None)
        read = re.search(r" size=(\d+) ", made.stdout)
        assert read, (made.stdout, made.stderr)
        if made.returncode != 0:  # a size it read but qcow2 cannot hold
            return QemuImgReading(int(read.group(1)), None)
        info = subprocess.run(
            ["qemu-img", "info", "--output=json", str(image)],
            capture_output=True,
            text=True,
            check=True,
        )
        return QemuImgReading(int(read.group(1)), json.loads(info.stdout)["virtual-size"])
    finally:
        image.unlink(missing_ok=True)


def read_or_none(text: str) -> int | None:
    try:
        return qemu_size(text)
    except ValueError:
        return None


def checked_or_none(text: str) -> int | None:
    try:
        return parse_size(text)
    except ValueError:
        return None


@pytest.mark.parametrize("text", SIZES)
def test_a_size_reads_as_qemu_img_reads_it(text: str, tmp_path: Path) -> None:
    qemu = qemu_img_create(text, tmp_path)
    ours = read_or_none(text)

    assert ours == qemu.requested
    if qemu.virtual_size is not None:
        assert ours is not None
        assert qemu.virtual_size == -(-ours // SECTOR) * SECTOR  # qcow2 rounds up to sectors
    accepted = checked_or_none(text)
    if accepted is not None and qemu.virtual_size is not None:
        assert accepted == qemu.virtual_size  # the volume has exactly the size asked for


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        # qemu-img 7.2 still reads a unit after hex (with a deprecation warning); 8.0 refuses it.
        ("0x10k", "a hexadecimal size takes no unit"),
        # qemu-img reads these fractions off by a whole unit: 1 GiB, and 0 bytes.
        ("1.9999999999999999999999G", "too many digits"),
        ("0.99999999999999999999k", "too many digits"),
        # A fraction below the smallest double: qemu-img drops the unit and reads 1 byte.
        ("1." + "0" * 400 + "1G", "too many digits"),
    ],
)
def test_sizes_qemu_img_reads_ambiguously_are_refused(text: str, rule: str, tmp_path: Path) -> None:
    assert qemu_img_create(text, tmp_path).requested is not None
    with pytest.raises(ValueError, match=rule):
        qemu_size(text)

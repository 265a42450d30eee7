"""A tiny bootable disk for real-VM tests: a 512-byte boot sector that writes a marker to COM1.

The code, 16-bit real mode at 0x7c00: ``cli; xor ax,ax; mov ds,ax; cld; mov si,msg;
mov dx,0x3f8; next: lodsb; test al,al; jz done; out dx,al; jmp next; done: hlt; jmp done``.
The guest never powers off by itself and ignores ACPI, so tests stop it with destroy or a forced
shutdown.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

MARKER = b"ORCH-BOOT-OK"
_CODE_BEFORE_MSG = 23  # bytes of code; the message follows


def boot_sector(marker: bytes = MARKER) -> bytes:
    message = marker + b"\r\n\0"
    msg_address = 0x7C00 + _CODE_BEFORE_MSG
    code = bytes(
        [
            0xFA,  # cli
            0x31, 0xC0,  # xor ax, ax
            0x8E, 0xD8,  # mov ds, ax
            0xFC,  # cld
            0xBE, msg_address & 0xFF, msg_address >> 8,  # mov si, msg
            0xBA, 0xF8, 0x03,  # mov dx, 0x3f8
            0xAC,  # next: lodsb
            0x84, 0xC0,  # test al, al
            0x74, 0x03,  # jz done
            0xEE,  # out dx, al
            0xEB, 0xF8,  # jmp next
            0xF4,  # done: hlt
            0xEB, 0xFD,  # jmp done
        ]
    )  # fmt: skip
    assert len(code) == _CODE_BEFORE_MSG
    body = code + message
    if len(body) > 510:
        raise ValueError("marker too long for a boot sector")
    return body.ljust(510, b"\0") + b"\x55\xaa"


def write_base_image(path: Path, marker: bytes = MARKER) -> Path:
    """A raw disk image holding only the boot sector."""
    path.write_bytes(boot_sector(marker))
    path.chmod(0o644)
    return path


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

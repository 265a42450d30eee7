"""A tiny bootable disk: a 512-byte boot sector that writes a marker to COM1, then halts.

Real-VM tests, the benchmark and the demo boot it to prove a guest ran: the marker reaches a
file-backed serial port. The code, 16-bit real mode at 0x7c00: ``cli; xor ax,ax; mov ds,ax; cld;
mov si,msg; mov dx,0x3f8; next: lodsb; test al,al; jz done; out dx,al; jmp next; done: hlt;
jmp done``. The guest never powers off by itself and ignores ACPI, so stop it with destroy or a
forced shutdown.
"""

from __future__ import annotations

from pathlib import Path

MARKER = b"ORCH-BOOT-OK"
SECTOR = 512
_CODE_BEFORE_MSG = 23  # bytes of code; the message follows
MAX_MARKER = SECTOR - 2 - _CODE_BEFORE_MSG - 3  # room left for CR, LF, NUL and the signature


def boot_sector(marker: bytes = MARKER) -> bytes:
    """The 512 bytes: code, ``marker`` + CRLF + NUL, zero padding, the 0x55AA signature."""
    if len(marker) > MAX_MARKER:
        raise ValueError(f"marker too long for a boot sector: at most {MAX_MARKER} bytes")
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
    return (code + message).ljust(SECTOR - 2, b"\0") + b"\x55\xaa"


def write_base_image(path: Path, marker: bytes = MARKER, size: int = SECTOR) -> Path:
    """Write a raw disk image of ``size`` bytes (a multiple of 512) starting with the boot sector.

    The file is world-readable: qemu runs as another user and must open it.
    """
    if size < SECTOR or size % SECTOR:
        raise ValueError(f"size must be a positive multiple of {SECTOR} bytes, got {size}")
    with path.open("wb") as image:
        image.write(boot_sector(marker))
        image.truncate(size)  # sparse: the rest reads as zeros
    path.chmod(0o644)
    return path

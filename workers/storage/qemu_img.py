"""What ``qemu-img info`` says about an image file on this machine."""

from __future__ import annotations

import json
import subprocess
from typing import Any

INFO_TIMEOUT = 30


def image_info(path: str) -> dict[str, Any]:
    """Format, virtual and actual size, backing file of ``path``, as qemu-img reports them.

    ``-U`` reads without taking the image lock, so this works while a VM uses the image.
    Raises ``RuntimeError`` with qemu-img's message when it cannot read the file.
    """
    raw = _qemu_img_info(path)
    specific = raw.get("format-specific", {}).get("data", {})
    return {
        "format": raw.get("format"),
        "virtual_size": raw.get("virtual-size"),
        "actual_size": raw.get("actual-size"),
        "backing_file": raw.get("backing-filename"),
        "backing_format": raw.get("backing-filename-format"),
        "data_file": specific.get("data-file"),
        "dirty": raw.get("dirty-flag", False),
    }


def image_header(path: str, fmt: str | None = None) -> dict[str, Any]:
    """``qemu-img info`` of ``path`` alone, as qemu-img reports it (its backing file unopened);
    read as ``fmt`` when given (as an overlay names its backing file's format), else probed."""
    raw = _qemu_img_info(path, *(["-f", fmt] if fmt else []))
    return dict(raw)


def _qemu_img_info(path: str, *options: str) -> Any:
    if not path.startswith("/"):
        # An absolute path is never read as an option or a protocol prefix such as "nbd:".
        raise ValueError(f"qemu-img needs an absolute path, got {path!r}")
    try:
        proc = subprocess.run(
            ["qemu-img", "info", "-U", *options, "--output=json", path],
            capture_output=True,
            text=True,
            timeout=INFO_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:  # a FIFO, a hung NFS mount: never an image to read
        raise RuntimeError(f"qemu-img info gave no answer within {INFO_TIMEOUT}s") from None
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip() or f"qemu-img info exited {proc.returncode}")
    return json.loads(proc.stdout)

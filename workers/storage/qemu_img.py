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
    if not path.startswith("/"):
        # An absolute path is never read as an option or a protocol prefix such as "nbd:".
        raise ValueError(f"qemu-img needs an absolute path, got {path!r}")
    proc = subprocess.run(
        ["qemu-img", "info", "-U", "--output=json", path],
        capture_output=True,
        text=True,
        timeout=INFO_TIMEOUT,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip() or f"qemu-img info exited {proc.returncode}")
    raw = json.loads(proc.stdout)
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

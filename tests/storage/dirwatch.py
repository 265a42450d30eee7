"""Wait for a file to appear in a directory, woken by the kernel (inotify) instead of polling."""

from __future__ import annotations

import ctypes
import os
import select
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

_IN_MOVED_TO = 0x80
_IN_CREATE = 0x100
_libc = ctypes.CDLL(None, use_errno=True)


class DirectoryWatch:
    """Watches ``directory`` for new entries from the moment it is made."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._fd = _libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self._fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        mask = _IN_CREATE | _IN_MOVED_TO
        if _libc.inotify_add_watch(self._fd, os.fsencode(directory), mask) < 0:
            error = ctypes.get_errno()
            os.close(self._fd)
            raise OSError(error, f"cannot watch {directory}")

    def wait_for(self, name: str, timeout: float, gave_up: Callable[[], bool]) -> bool:
        """Whether ``name`` exists in the directory within ``timeout`` seconds; False as soon as
        ``gave_up()`` says it never will (checked at least twice a second)."""
        deadline = time.monotonic() + timeout
        while not (self.directory / name).exists():
            left = deadline - time.monotonic()
            if left <= 0 or gave_up():
                return False
            readable, _, _ = select.select([self._fd], [], [], min(left, 0.5))
            if readable:
                os.read(self._fd, 64 * 1024)  # the names are not needed: the loop looks
        return True

    def close(self) -> None:
        os.close(self._fd)

    def __enter__(self) -> DirectoryWatch:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

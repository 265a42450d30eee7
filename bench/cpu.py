"""CPU seconds spent by each service of a benchmark run, children included.

A benchmark on a 2-core machine is a CPU budget: reporting where the seconds went (API,
worker, recorder, Redis, libvirtd and the qemu-img it spawns) shows what to make cheaper.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import psutil


def _process_seconds(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    # children_* counts the children that exited and were waited for (qemu-img under libvirtd).
    return times.user + times.system + times.children_user + times.children_system


def _own_tree(proc: psutil.Process, listed: set[int]) -> list[psutil.Process]:
    """``proc`` and its descendants, less the subtrees of processes measured on their own
    (the benchmark process is the parent of the services it measures)."""
    tree = [proc]
    for child in proc.children():
        if child.pid not in listed:
            tree.extend(_own_tree(child, listed))
    return tree


class CpuMeter:
    """Measures CPU seconds per named process (and its live children, unless measured on
    their own) between :meth:`start` and :meth:`stop`."""

    def __init__(self, pids: Mapping[str, int | None], *, alone: Iterable[str] = ()) -> None:
        """``alone`` names processes counted without their children: the benchmark process,
        whose children are the services."""
        self.processes = {
            name: psutil.Process(pid) for name, pid in pids.items() if pid is not None
        }
        self.alone = set(alone)
        self._before: dict[str, float] = {}

    def _now(self) -> dict[str, float]:
        seconds = {}
        listed = {proc.pid for proc in self.processes.values()}
        for name, proc in self.processes.items():
            try:
                tree = [proc] if name in self.alone else _own_tree(proc, listed)
                seconds[name] = sum(_process_seconds(p) for p in tree if p.is_running())
            except psutil.NoSuchProcess:
                seconds[name] = self._before.get(name, 0.0)
        return seconds

    def start(self) -> None:
        self._before = self._now()

    def stop(self) -> dict[str, float]:
        """CPU seconds of each process since :meth:`start`, rounded to milliseconds."""
        after = self._now()
        return {name: round(after[name] - self._before.get(name, 0.0), 3) for name in after}


def pid_of(name: str) -> int | None:
    """The PID of the oldest running process called ``name`` (such as libvirtd), or None."""
    found = [p for p in psutil.process_iter(["name", "create_time"]) if p.info["name"] == name]
    return min(found, key=lambda p: p.info["create_time"]).pid if found else None


def per_item_ms(seconds: Mapping[str, float], count: int) -> dict[str, float]:
    """CPU milliseconds per item (job, volume) for each process."""
    return {name: round(1000 * value / count, 2) for name, value in seconds.items()}

"""A progress bar for jobs made of parts: a ``count`` request's parent (its child jobs) and a
fleet job (its hosts). It is drawn on stderr, on a terminal or when asked for; the events
themselves say the same in words, so a log without the bar loses nothing."""

from __future__ import annotations

from collections import Counter
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)


class JobProgress:
    """Fed the job's document and each event; draws nothing until it knows a total."""

    def __init__(self, console: Console | None) -> None:
        self.console = console
        self._bar: Progress | None = None
        self._task: TaskID | None = None
        self._tally: Counter[str] = Counter()
        self._counted: set[str] = set()

    @property
    def drawing(self) -> bool:
        return self._bar is not None

    def start(self, job: dict[str, Any]) -> None:
        """Open the bar of a count request's parent; its events, followed from the first,
        then count each child once as it ends."""
        children = job.get("children")
        if isinstance(children, dict) and children.get("count"):
            self._open(f"{job['kind']} x{children['count']}", children["count"])

    def on_event(self, event: dict[str, Any]) -> None:
        data = event.get("data")
        if not isinstance(data, dict):
            return
        if self._bar is None and isinstance(data.get("hosts"), int) and data.get("module"):
            self._open(f"{data['module']} on {data['hosts']} hosts", data["hosts"])
        elif event.get("host") and "status" in data:
            self._count(event["host"], data["status"])  # one host's result
        elif data.get("job") and data.get("state"):
            self._count(data["job"], data["state"])  # one child job ended

    def print(self, text: str) -> None:
        """A line above the bar."""
        assert self._bar is not None
        self._bar.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def _open(self, description: str, total: int) -> None:
        if self.console is None:
            return
        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[tally]}"),
            TimeElapsedColumn(),
            console=self.console,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._task = self._bar.add_task(description, total=total, tally="")
        self._bar.start()

    def _count(self, part: str, outcome: str) -> None:
        if part in self._counted:
            return
        self._counted.add(part)
        self._tally[outcome] += 1
        self._update(len(self._counted))

    def _update(self, done: int) -> None:
        if self._bar is None or self._task is None:
            return
        tally = ", ".join(f"{n} {name}" for name, n in self._tally.items() if n)
        self._bar.update(self._task, completed=done, tally=tally)

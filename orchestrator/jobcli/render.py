"""What the job commands print: events as lines, problem documents field by field, a job's
outcome. With ``--json`` stdout carries one JSON document and nothing else; every other line
goes to stderr."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Any, TextIO

import click

from orchestrator.jobcli.progress import JobProgress

_CONTINUED = " " * 22  # under the message of an event line


def event_line(event: dict[str, Any]) -> str:
    """``seq time level host: message``; a message of many lines continues indented."""
    when = _clock(event.get("time"))
    level = event.get("level") or "info"
    host = f"{event['host']}: " if event.get("host") else ""
    first, *more = str(event.get("message", "")).splitlines() or [""]
    head = f"{event['seq']:>4} {when} {level:<7} {host}{first}"
    return "\n".join([head, *(_CONTINUED + line for line in more)])


def problem_lines(problem: dict[str, Any]) -> list[str]:
    """A problem document as the user needs it: status, title, detail, then each field."""
    status = problem.get("status")
    title = problem.get("title") or "Error"
    head = f"{status} {title}" if status else title
    detail = problem.get("detail")
    lines = [f"{head}: {detail}" if detail else head]
    for error in problem.get("errors") or []:
        if isinstance(error, dict):
            field = error.get("field") or "(body)"
            lines.append(f"  {field}: {error.get('message', '')}")
    return lines


def outcome_lines(job: dict[str, Any]) -> list[str]:
    """The job's end: its state and time taken, then its result or its error."""
    took = _duration(job.get("started_at"), job.get("finished_at"))
    lines = [f"job {job['id']} {job['state']}{took}"]
    if job["state"] == "succeeded":
        if job.get("result") is not None:
            lines.append(json.dumps(job["result"], indent=2, default=str))
    elif isinstance(job.get("error"), dict):
        lines += ["  " + line for line in problem_lines(job["error"])]
    elif job.get("error"):
        lines.append(f"  {job['error']}")
    return lines


def accepted_line(job: dict[str, Any]) -> str:
    where = f" on {job['hypervisor']}" if job.get("hypervisor") else ""
    children = job.get("children")
    parts = f" ({children['count']} jobs)" if isinstance(children, dict) else ""
    return f"job {job['id']} {job['kind']}{where}{parts}: {job['state']}"


class Output:
    """Where each line goes. Events go to stdout, or to stderr with ``--json``; a progress
    bar on stderr gets them printed above it when they share its terminal."""

    def __init__(
        self, as_json: bool, progress: JobProgress | None = None, events_as_json: bool = False
    ) -> None:
        self.as_json = as_json
        self.progress = progress or JobProgress(None)
        self.events_as_json = events_as_json  # `logs --json`: the events are the answer
        self._events: TextIO = sys.stderr if as_json else sys.stdout

    def event(self, event: dict[str, Any]) -> None:
        if self.events_as_json:
            click.echo(json.dumps(event, default=str))
            return
        line = event_line(event)
        if self.progress.drawing and (self.as_json or self._events.isatty()):
            self.progress.print(line)
        else:
            click.echo(line, file=self._events)
        self.progress.on_event(event)

    def note(self, text: str) -> None:
        """A remark on stderr (retries, what happens next)."""
        if self.progress.drawing:
            self.progress.print(text)
        else:
            click.echo(text, err=True)

    def document(self, document: Any) -> None:
        """The machine-readable answer: stdout with ``--json``."""
        click.echo(json.dumps(document, indent=2, default=str))

    def problem(self, problem: dict[str, Any]) -> None:
        if self.as_json:
            self.document(problem)
            return
        head, *fields = problem_lines(problem)
        click.echo("\n".join([f"error: {head}", *fields]), err=True)

    def outcome(self, job: dict[str, Any]) -> None:
        """How a followed job ended: its document with ``--json``, else in words."""
        if self.events_as_json:
            return  # the events were the answer, and the last says it
        if self.as_json:
            self.document(job)
        else:
            self.human(outcome_lines(job))

    def unfinished(self, job: dict[str, Any]) -> None:
        """A job no longer waited for: its document as last seen, with ``--json``."""
        if self.as_json and not self.events_as_json:
            self.document(job)

    def human(self, lines: list[str] | str) -> None:
        """Lines for a person: stdout, or stderr with ``--json``."""
        text = lines if isinstance(lines, str) else "\n".join(lines)
        click.echo(text, err=self.as_json)


def _clock(value: str | None) -> str:
    try:
        return datetime.fromisoformat(value).strftime("%H:%M:%S") if value else "--:--:--"
    except ValueError:
        return "--:--:--"


def _duration(started: str | None, finished: str | None) -> str:
    if not started or not finished:
        return ""
    try:
        took = datetime.fromisoformat(finished) - datetime.fromisoformat(started)
    except ValueError:
        return ""
    return f" in {took.total_seconds():.1f} s"

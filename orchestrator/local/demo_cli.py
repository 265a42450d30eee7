"""The CLI steps of ``orchestrator demo``, on the demo's sshd hosts: ``orchestrator submit
fleet.run --wait`` run as a CI job runs it, a process of its own told where the API is by
``ORCH_API_URL`` (and, once the demo has made one, its token by ``ORCH_API_TOKEN``), its events
printed line by line as they come; then a command that fails on every host, and the exit code
the CLI ends with, which is what fails a CI step.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import tempfile
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.console import Console

from orchestrator.client import ApiClient
from orchestrator.jobcli.outcomes import ExitCode
from orchestrator.local.demo_access import DemoToken
from orchestrator.local.demo_steps import Step
from orchestrator.local.stack import orchestrator_argv
from orchestrator.settings import Settings

if TYPE_CHECKING:  # demo_fleet builds its steps from these
    from orchestrator.local.demo_fleet import DemoHosts

# Output over three seconds, a line a second: the events show it as it comes, not at the end.
LIVE_COMMAND = 'for i in 1 2 3; do echo "line $i of 3 at $(date +%T)"; sleep 1; done'
FAILING_ARGV = ["ls", "/nonexistent/orchestrator-demo"]
CLI_TIMEOUT = 120  # --timeout: the CLI exits 4 by then, whatever happens to the job
MEANINGS = {
    ExitCode.SUCCEEDED: "the job succeeded",
    ExitCode.FAILED: "the job failed",
    ExitCode.REFUSED: "bad input, or the API refused the request (4xx)",
    ExitCode.STOPPED: "the job was cancelled or lost",
    ExitCode.TIMED_OUT: "--timeout ran out while waiting; the job goes on",
    ExitCode.UNREACHABLE: "the API stayed unreachable",
    ExitCode.INTERRUPTED: "interrupted while following; the job goes on",
}

console = Console()


@dataclass(frozen=True)
class CliRun:
    """A finished ``orchestrator submit ... --wait --json``."""

    command: str  # as a user would type it
    code: int
    job: dict[str, Any]  # the document --json printed: the job, or a problem

    @property
    def meaning(self) -> str:
        known = self.code in ExitCode.__members__.values()
        return MEANINGS[ExitCode(self.code)] if known else "not an exit code of the CLI"


def follow_live_step(hosts: DemoHosts) -> Step:
    """A shell loop on every host, its output followed live by the CLI."""

    def step(client: ApiClient, settings: Settings) -> dict[str, Any]:
        skipped = hosts.skipped()
        if skipped:
            return skipped
        run = run_submit(settings, hosts.params({"module": "shell", "cmd": LIVE_COMMAND}))
        return _shown(run, expected=ExitCode.SUCCEEDED)

    return step


def failing_job_step(hosts: DemoHosts) -> Step:
    """``ls`` of a path no host has: the job fails, and the CLI says so with exit code 1."""

    def step(client: ApiClient, settings: Settings) -> dict[str, Any]:
        skipped = hosts.skipped()
        if skipped:
            return skipped
        run = run_submit(settings, hosts.params({"module": "command", "argv": FAILING_ARGV}))
        console.print(f"[bold]exit code {run.code}[/bold]: {run.meaning}")
        return _shown(run, expected=ExitCode.FAILED)

    return step


def run_submit(settings: Settings, params: dict[str, Any]) -> CliRun:
    """Run ``orchestrator submit fleet.run`` with ``params`` and wait, printing its events (its
    stderr under ``--json``) as they come."""
    args = ["submit", "fleet.run", "--hypervisor", settings.hypervisor, "--wait", "--json"]
    args += ["--no-progress", "--timeout", str(CLI_TIMEOUT)]
    for key, value in params.items():
        args += ["-p", f"{key}={value if isinstance(value, str) else json.dumps(value)}"]
    _print_as_is(f"$ {shlex.join(['orchestrator', *args])}")
    # The final document goes to a file: a pipe read only at the end could fill and stall it.
    with tempfile.TemporaryFile("w+") as stdout:
        process = subprocess.Popen(
            orchestrator_argv(*args),
            env=_cli_env(settings),
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stderr is not None
        for line in process.stderr:
            _print_as_is(f"  {line.rstrip()}")
        code = process.wait()
        stdout.seek(0)
        printed = stdout.read()
    return CliRun(shlex.join(["orchestrator", *args[:2], "..."]), code, _document(printed))


def _print_as_is(line: str) -> None:
    """A line of the command's, unwrapped and uncoloured: the terminal wraps it, if need be."""
    console.print(line, markup=False, highlight=False, soft_wrap=True)


def _cli_env(settings: Settings) -> dict[str, str]:
    """What a CI job gives the CLI: where the API is and, when there is one, the token; none
    of the stack's own settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCH_")}
    env["ORCH_API_URL"] = settings.resolved_api_url
    if DemoToken.secret:
        env["ORCH_API_TOKEN"] = DemoToken.secret
    return env


def _document(printed: str) -> dict[str, Any]:
    try:
        document: dict[str, Any] = json.loads(printed)
    except ValueError:
        document = {"detail": printed.strip() or "(nothing on stdout)"}
    return document


def _shown(run: CliRun, expected: ExitCode) -> dict[str, Any]:
    """The step's outcome: as expected when the CLI exited with ``expected``."""
    job = run.job
    summary = job.get("result") or (job.get("error") or {}).get("result") or {}
    shown = {
        "command": run.command,
        "exit code": run.code,
        "meaning": run.meaning,
        "job": job.get("id"),
        "state": job.get("state"),
        "recap": summary.get("recap_text"),
    }
    if job.get("error"):
        shown["error"] = job["error"].get("detail")
    if run.code != expected:
        return {"id": None, "state": "failed", "error": {**shown, "expected": int(expected)}}
    return {"id": None, "state": "succeeded", "result": shown}

"""``orchestrator submit``, ``logs``, ``cancel`` and ``jobs``: the API's job routes for CI, with
the exit codes of :class:`~orchestrator.jobcli.outcomes.ExitCode`."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import IO, Any, NoReturn

import click
from rich.console import Console

from orchestrator.client import ApiClient, ApiError
from orchestrator.jobcli.follow import JobFollower
from orchestrator.jobcli.outcomes import (
    ExitCode,
    FollowError,
    TimedOut,
    Unreachable,
    exit_code_for_refusal,
    exit_code_for_state,
)
from orchestrator.jobcli.progress import JobProgress
from orchestrator.jobcli.render import Output, accepted_line
from orchestrator.jobcli.retrying import Patience, is_transient
from orchestrator.settings import Settings

# Seconds to connect, and between bytes read; the event stream's keep-alives come more often.
REQUEST_TIMEOUT = 30.0
DEFAULT_RETRY_FOR = 60.0
PAGE = 500  # the most GET /v1/jobs answers at once


@dataclass
class Call:
    """One command's connection to the API, patience and output."""

    client: ApiClient
    patience: Patience
    out: Output

    def request(self, send: Callable[[], Any]) -> Any:
        """``send()`` retried through network errors, each try bounded by what time is left."""

        def bounded() -> Any:
            self.client.timeout = self.patience.bounded(REQUEST_TIMEOUT)
            return send()

        return self.patience.call(bounded)

    def follow(self, job: dict[str, Any]) -> ExitCode:
        """Print the job's events until it ends; its outcome as an exit code."""
        self.out.progress.start(job)
        follower = JobFollower(self.client, job["id"], self.patience, self.out.event)
        try:
            final = follower.follow()
        except TimedOut as exc:
            self.out.progress.stop()
            return self._timed_out(job, exc)
        self.out.progress.stop()
        self.out.outcome(final)
        return exit_code_for_state(final["state"])

    def _timed_out(self, job: dict[str, Any], exc: TimedOut) -> ExitCode:
        try:  # one quick look, so --json can show how far the job got
            self.client.timeout = 5.0
            job = self.client.job(job["id"])
        except Exception as error:
            if not is_transient(error):
                raise
        self.out.unfinished(job)
        self.out.note(
            f"{exc.detail}: job {job['id']} is {job['state']} and goes on; "
            f"`orchestrator logs -f {job['id']}` follows it, `orchestrator cancel {job['id']}` "
            "stops it"
        )
        return ExitCode.TIMED_OUT


def api_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Where the API is, the token, and how long to ride out its absence."""
    options = [
        click.option(
            "--api-url",
            envvar="ORCH_API_URL",
            show_envvar=True,
            help="The API's base URL; default: the settings' api_url, else http://api_host:port.",
        ),
        click.option(
            "--token", envvar="ORCH_API_TOKEN", show_envvar=True, help="Bearer token to send."
        ),
        click.option(
            "--retry-for",
            type=click.FloatRange(min=0),
            default=DEFAULT_RETRY_FOR,
            show_default=True,
            help="Seconds to keep retrying while the API is unreachable or answers 502/503/504, "
            "before exiting 5.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def json_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--json", "as_json", is_flag=True, help="Print only JSON on stdout (lines go to stderr)."
    )(command)


def progress_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--progress/--no-progress",
        default=None,
        help="Draw a progress bar on stderr for count requests and fleet jobs; default: when "
        "stderr is a terminal.",
    )(command)


@click.command("submit")
@click.argument("kind", required=False)
@click.option(
    "--param",
    "-p",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="A parameter; VALUE is read as JSON when it parses, else as a string. Repeat for more.",
)
@click.option(
    "--file",
    "body_file",
    type=click.File("r"),
    help="The whole request body (kind, params, hypervisor, placement) as JSON; - for stdin. "
    "KIND, -p and --hypervisor override what it says.",
)
@click.option("--hypervisor", help="Hypervisor to run on; default: placement chooses.")
@click.option("--wait/--no-wait", default=False, help="Follow the job's events until it ends.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    help="Seconds to wait in all; exit 4 when they run out (the job goes on). Default: no limit.",
)
@click.option(
    "--idempotency-key",
    help="Sent as Idempotency-Key: the same key again answers with the same job. Default: a "
    "new key per run, reused by its own retries.",
)
@json_option
@progress_option
@api_options
def submit_command(
    kind: str | None,
    params: tuple[str, ...],
    body_file: IO[str] | None,
    hypervisor: str | None,
    wait: bool,
    timeout: float | None,
    idempotency_key: str | None,
    as_json: bool,
    progress: bool | None,
    api_url: str | None,
    token: str | None,
    retry_for: float,
) -> None:
    """Submit a job of KIND through the API; with --wait, follow it to its end.

    Exit codes: 0 succeeded (or accepted, without --wait), 1 failed, 2 bad input or refused
    by the API, 3 cancelled or lost, 4 --timeout ran out, 5 API unreachable.
    """
    body = job_body(kind, body_file, params, hypervisor)
    key = idempotency_key or str(uuid.uuid4())
    call = _call(api_url, token, timeout, retry_for, as_json, progress)

    def run() -> ExitCode:
        job = call.request(lambda: call.client.submit(body, idempotency_key=key))
        if as_json and not wait:
            call.out.document(job)
            return ExitCode.SUCCEEDED
        call.out.human(accepted_line(job))
        return call.follow(job) if wait else ExitCode.SUCCEEDED

    _finish(call, run)


@click.command("logs")
@click.argument("job_id", metavar="JOB")
@click.option("--follow", "-f", is_flag=True, help="Go on printing events until the job ends.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    help="With -f: seconds to wait in all; exit 4 when they run out. Default: no limit.",
)
@click.option("--json", "as_json", is_flag=True, help="Each event as one line of JSON.")
@progress_option
@api_options
def logs_command(
    job_id: str,
    follow: bool,
    timeout: float | None,
    as_json: bool,
    progress: bool | None,
    api_url: str | None,
    token: str | None,
    retry_for: float,
) -> None:
    """Print the events of JOB; with -f, until it ends, exiting as `submit --wait` does."""
    call = _call(api_url, token, timeout, retry_for, False, progress, events_as_json=as_json)

    def run() -> ExitCode:
        if not follow:
            after = 0
            while page := call.request(partial(call.client.events_page, job_id, after))["items"]:
                for event in page:
                    call.out.event(event)
                after = page[-1]["seq"]
            return ExitCode.SUCCEEDED
        job = call.request(lambda: call.client.job(job_id))
        return call.follow(job)

    _finish(call, run)


@click.command("cancel")
@click.argument("job_id", metavar="JOB")
@json_option
@api_options
def cancel_command(
    job_id: str, as_json: bool, api_url: str | None, token: str | None, retry_for: float
) -> None:
    """Cancel JOB if it has not started; ask it to stop if it runs (exit 0 either way)."""
    call = _call(api_url, token, None, retry_for, as_json, False)

    def run() -> ExitCode:
        try:
            job = call.request(lambda: call.client.cancel(job_id))
        except ApiError as exc:
            # A retry of a cancel whose answer the network lost finds the job already ended.
            job = call.request(lambda: call.client.job(job_id)) if exc.status == 409 else None
            if job is None or job["state"] != "cancelled":
                raise
        if as_json:
            call.out.document(job)
        elif job.get("cancel_requested"):
            call.out.human(f"job {job_id} is {job['state']}: asked to stop")
        else:
            call.out.human(f"job {job_id} {job['state']}")
        return ExitCode.SUCCEEDED

    _finish(call, run)


@click.command("jobs")
@click.option("--state", help="Only jobs in this state.")
@click.option("--kind", help="Only jobs of this kind.")
@click.option("--hypervisor", help="Only jobs on this hypervisor.")
@click.option("--parent", help="Only the children of this count request.")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@json_option
@api_options
def jobs_command(
    state: str | None,
    kind: str | None,
    hypervisor: str | None,
    parent: str | None,
    limit: int,
    as_json: bool,
    api_url: str | None,
    token: str | None,
    retry_for: float,
) -> None:
    """List jobs, newest first."""
    call = _call(api_url, token, None, retry_for, as_json, False)
    filters = {"state": state, "kind": kind, "hypervisor": hypervisor, "parent": parent}

    def run() -> ExitCode:
        found = list_jobs(call, {k: v for k, v in filters.items() if v is not None}, limit)
        if as_json:
            call.out.document(found)
        elif found:
            call.out.human([job_row(job) for job in found])
        return ExitCode.SUCCEEDED

    _finish(call, run)


def list_jobs(call: Call, filters: dict[str, str], limit: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor = None
    while len(found) < limit:
        query = {**filters, "limit": min(PAGE, limit - len(found))}
        if cursor:
            query["cursor"] = cursor
        page = call.request(partial(call.client.jobs_page, query))
        found += page["items"]
        cursor = page.get("next_cursor")
        if not cursor:
            break
    return found


def job_row(job: dict[str, Any]) -> str:
    return (
        f"{job['id']}  {job['state']:<9} {job['kind']:<20} "
        f"{job['hypervisor'] or '-':<16} {job['created_at']}"
    )


def job_body(
    kind: str | None, body_file: IO[str] | None, pairs: tuple[str, ...], hypervisor: str | None
) -> dict[str, Any]:
    """The POST body: the file's, then KIND, -p and --hypervisor over it."""
    body: dict[str, Any] = {}
    if body_file is not None:
        try:
            body = json.load(body_file)
        except json.JSONDecodeError as exc:
            raise click.BadParameter(f"not JSON: {exc}", param_hint="--file") from None
        if not isinstance(body, dict):
            raise click.BadParameter("must hold a JSON object", param_hint="--file")
    if kind:
        body["kind"] = kind
    if not body.get("kind"):
        raise click.UsageError("name the job's KIND, or give a --file that does")
    if pairs:
        body["params"] = {**(body.get("params") or {}), **parse_params(pairs)}
    if hypervisor:
        body["hypervisor"] = hypervisor
    return body


def parse_params(pairs: tuple[str, ...]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--param")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    return params


def _call(
    api_url: str | None,
    token: str | None,
    timeout: float | None,
    retry_for: float,
    as_json: bool,
    progress: bool | None,
    events_as_json: bool = False,
) -> Call:
    api_url = api_url or Settings().resolved_api_url
    console = Console(stderr=True, force_terminal=True if progress else None)
    draw = progress if progress is not None else console.is_terminal
    out = Output(as_json, JobProgress(console if draw else None), events_as_json)
    client = ApiClient(api_url, token=token, timeout=REQUEST_TIMEOUT)
    return Call(client, Patience(timeout, retry_for, out.note), out)


def _finish(call: Call, run: Callable[[], ExitCode]) -> NoReturn:
    """Run the command; turn every way it can end into its exit code, without a traceback."""
    try:
        try:
            code = run()
        finally:
            call.out.progress.stop()  # before any last line, so that it is not drawn over
    except ApiError as exc:
        call.out.problem(exc.problem)
        code = exit_code_for_refusal(exc)
    except FollowError as exc:
        call.out.problem(_cli_problem(exc, call.client.base_url))
        code = exc.exit_code
    except KeyboardInterrupt:
        call.out.note("interrupted: the job, if any, goes on")
        code = ExitCode.INTERRUPTED
    sys.exit(int(code))


def _cli_problem(exc: FollowError, api_url: str) -> dict[str, Any]:
    """A problem document for what the API could not say itself (it has no HTTP status)."""
    kind = f"urn:orchestrator:problem:{exc.slug}"
    detail = f"{exc.detail}; API at {api_url}" if isinstance(exc, Unreachable) else exc.detail
    return {"type": kind, "title": exc.title, "detail": detail}

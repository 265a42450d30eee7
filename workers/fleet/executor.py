"""``run_fleet``: one module call on many hosts, ``forks`` at a time, in batches (``serial``),
stopping later batches once a batch fails more than ``max_fail_percentage``."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from orchestrator.fleet.calls import (
    AnyCall,
    CommandCall,
    CopyCall,
    FetchCall,
    PingCall,
    ScriptCall,
    ShellCall,
)
from orchestrator.fleet.options import FleetOptions, plan_batches
from orchestrator.fleet.output_caps import OutputBudget
from orchestrator.fleet.redaction import Redactor
from orchestrator.fleet.results import FleetResult, HostResult, HostStatus, OutputSummary
from orchestrator.fleet.target import HostTarget
from workers.fleet.connections import Connection, ConnectionPool, StaleConnection
from workers.fleet.dial import DialSettings
from workers.fleet.errors import FleetError, HostUnreachable
from workers.fleet.hostkeys import HostKeyVerifier
from workers.fleet.modules import ModuleContext, ModuleOutcome, command, ping, script, shell
from workers.fleet.remote_command import CommandOutcome
from workers.fleet.transfer import copy, fetch

log = logging.getLogger(__name__)

OutputCallback = Callable[[str, str, str], None]  # (host, stream, line)

_MODULES: dict[type[Any], Callable[[Connection, Any, ModuleContext], ModuleOutcome]] = {
    PingCall: ping,
    CommandCall: command,
    ShellCall: shell,
    ScriptCall: script,
    CopyCall: copy,
    FetchCall: fetch,
}


def run_fleet(
    targets: list[HostTarget],
    call: AnyCall,
    options: FleetOptions | None = None,
    on_output: OutputCallback | None = None,
    *,
    pool: ConnectionPool,
    cancelled: Callable[[], bool] | None = None,
) -> FleetResult:
    """Run ``call`` on every target and return each host's result.

    ``on_output(host, stream, line)`` gets output lines as they arrive, from worker threads,
    already redacted. Connections stay in ``pool`` (the worker's, see ``WorkerResources``) for
    the next run. Once ``cancelled()`` is true, hosts not yet started are skipped (those running
    finish). Never raises for a host's failure; raises ValueError on duplicate host names.
    """
    options = options or FleetOptions()
    _check_unique(targets)
    redact = Redactor(s for t in targets for s in t.secrets())
    run = _Run(call, options, pool, redact, on_output, cancelled)
    by_name = {t.name: t for t in targets}
    results: dict[str, HostResult] = {}
    stopped: str | None = None
    with ThreadPoolExecutor(max_workers=options.forks, thread_name_prefix="fleet") as threads:
        for number, batch in enumerate(plan_batches(list(by_name), options.serial), 1):
            if stopped:
                results.update({h: _skipped(h, stopped) for h in batch})
                continue
            done = list(threads.map(run.host, [by_name[h] for h in batch]))
            results.update({r.host: r for r in done})
            stopped = _stop_reason(done, options.max_fail_percentage, number)
            stopped = stopped or (CANCELLED if run.cancel_seen else None)
    ordered = {t.name: results[t.name] for t in targets}
    return FleetResult(ordered, stopped_reason=stopped, output=run.output_summary(ordered))


class _Run:
    """One run's shared state; ``host`` is what each worker thread calls."""

    def __init__(
        self,
        call: AnyCall,
        options: FleetOptions,
        pool: ConnectionPool,
        redact: Redactor,
        on_output: OutputCallback | None,
        cancelled: Callable[[], bool] | None = None,
    ) -> None:
        self.call, self.options, self.pool, self.redact = call, options, pool, redact
        self.on_output = on_output
        self.cancelled = cancelled
        self.cancel_seen = False
        # Two shares of the same cap: bytes read from the hosts (the worker's memory, and the
        # output events), and their JSON form in the result (what Redis and SQL store).
        self.read_budget = OutputBudget(options.job_output_cap_bytes)
        self.stored_budget = OutputBudget(options.job_output_cap_bytes)
        store = options.known_hosts_store
        verifier = HostKeyVerifier(
            options.host_key_policy,
            tuple(os.path.expanduser(path) for path in options.known_hosts_files),
            None if store is None else os.path.expanduser(store),
        )
        self.dial_settings = DialSettings(
            verifier,
            options.connect_timeout,
            options.auth_timeout,
            options.connect_retries,
            options.retry_delay,
        )

    def host(self, target: HostTarget) -> HostResult:
        if self.cancel_seen or self._cancel_requested():
            self.cancel_seen = True
            return _skipped(target.name, CANCELLED)
        started = time.perf_counter()
        try:
            result = self._connect_and_run(target)
        except Exception as exc:  # a bug in one host's run must not lose the others' results
            log.exception("fleet run on %s crashed", target.name)
            result = HostResult(target.name, HostStatus.FAILED, error=self.redact.error(exc))
        result.durations_ms["total"] = _ms_since(started)
        log.info("fleet %s on %s: %s", self.call.module, target.name, result.status.value)
        return result

    def _cancel_requested(self) -> bool:
        if self.cancelled is None:
            return False
        try:
            return self.cancelled()
        except Exception:  # a failed check (Redis away) must not lose the hosts already run
            log.warning("could not check for a cancel request", exc_info=True)
            return False

    def _connect_and_run(self, target: HostTarget) -> HostResult:
        for fresh in (False, True):
            try:
                conn = self.pool.acquire(target, self.dial_settings, self.redact, fresh=fresh)
            except HostUnreachable as exc:
                return HostResult(target.name, HostStatus.UNREACHABLE, error=exc.detail)
            try:
                return self._run_module(conn, target)
            except StaleConnection:
                self.pool.discard(conn)  # died while idle; nothing ran, so dial again
        raise AssertionError("unreachable: a fresh connection is never stale")

    def _run_module(self, conn: Connection, target: HostTarget) -> HostResult:
        ctx = ModuleContext(target, self.options, self._line_sink(target.name), self.read_budget)
        started = time.perf_counter()
        healthy = False
        try:
            outcome = _MODULES[type(self.call)](conn, self.call, ctx)
            healthy = not (outcome.command and outcome.command.timed_out)
        except StaleConnection:
            raise
        except FleetError as exc:
            healthy = conn.alive()
            outcome = ModuleOutcome(failed=True, changed=False, error=exc.detail)
        except Exception as exc:  # paramiko/socket errors mid-module
            if not conn.alive():
                return self._lost(conn, target, exc)
            outcome = ModuleOutcome(failed=True, changed=False, error=self.redact.error(exc))
        finally:
            exec_ms = _ms_since(started)
        # A timed-out command's channel was cut; the connection may be wedged, so drop it.
        self.pool.release(conn, healthy=healthy)
        result = self._result(target, conn, outcome)
        result.durations_ms["exec"] = exec_ms
        return result

    def _lost(self, conn: Connection, target: HostTarget, exc: Exception) -> HostResult:
        # Ansible calls a host whose connection dropped mid-task unreachable, not failed.
        self.pool.discard(conn)
        detail = self.redact.error(exc)
        return HostResult(target.name, HostStatus.UNREACHABLE, error=f"connection lost: {detail}")

    def _result(self, target: HostTarget, conn: Connection, outcome: ModuleOutcome) -> HostResult:
        status = (
            HostStatus.FAILED
            if outcome.failed
            else (HostStatus.CHANGED if outcome.changed else HostStatus.OK)
        )
        result = HostResult(
            target.name,
            status,
            changed=outcome.changed,
            error=self.redact(outcome.error) if outcome.error else None,
            host_key_check=conn.host_key_check,
            reused_connection=conn.reused,
            data=outcome.data,
            stdout=self.redact(outcome.stdout),
        )
        if outcome.command is not None:
            self._keep_output(result, outcome.command)
        dialed = conn.dialed
        result.durations_ms["connect"] = 0.0 if conn.reused else round(dialed.connect_ms, 3)
        result.durations_ms["auth"] = 0.0 if conn.reused else round(dialed.auth_ms, 3)
        return result

    def _keep_output(self, result: HostResult, command: CommandOutcome) -> None:
        """The command's output, redacted, in the result as far as the job's cap allows."""
        result.rc = command.rc
        result.stdout, cut = self.stored_budget.fit(self.redact(command.text("stdout")))
        result.stdout_dropped_bytes = command.stdout_dropped + cut
        result.stdout_truncated = command.stdout_truncated or cut > 0
        result.stderr, cut = self.stored_budget.fit(self.redact(command.text("stderr")))
        result.stderr_dropped_bytes = command.stderr_dropped + cut
        result.stderr_truncated = command.stderr_truncated or cut > 0

    def output_summary(self, results: dict[str, HostResult]) -> OutputSummary:
        dropped = sum(r.stdout_dropped_bytes + r.stderr_dropped_bytes for r in results.values())
        return OutputSummary(
            job_cap_bytes=self.stored_budget.total,
            kept_bytes=self.stored_budget.used,
            dropped_bytes=dropped,
            job_cap_reached=self.read_budget.exhausted or self.stored_budget.exhausted,
        )

    def _line_sink(self, host: str) -> Callable[[str, str], None] | None:
        callback = self.on_output
        if callback is None:
            return None

        def sink(stream: str, line: str) -> None:
            try:
                callback(host, stream, self.redact(line))
            except Exception:  # a broken listener must not fail the host's command
                log.exception("on_output callback failed for %s", host)

        return sink


CANCELLED = "cancelled: hosts not yet started were skipped"


def _stop_reason(batch: list[HostResult], max_fail: float | None, number: int) -> str | None:
    """Why later batches must not run, or None. As in Ansible, unreachable hosts count as
    failed, and a batch in which every host failed stops the run even without a limit."""
    bad = sum(r.status in (HostStatus.FAILED, HostStatus.UNREACHABLE) for r in batch)
    if not batch or not bad:
        return None
    percent = 100.0 * bad / len(batch)
    if max_fail is not None and percent > max_fail:
        return (
            f"batch {number}: {bad} of {len(batch)} hosts failed ({percent:.0f}%), "
            f"over max_fail_percentage {max_fail:g}%"
        )
    if bad == len(batch):
        return f"batch {number}: every host failed"
    return None


def _skipped(host: str, reason: str) -> HostResult:
    return HostResult(host, HostStatus.SKIPPED, error=f"not run: {reason}")


def _check_unique(targets: list[HostTarget]) -> None:
    seen: set[str] = set()
    for target in targets:
        if target.name in seen:
            raise ValueError(f"host name {target.name!r} appears twice in targets")
        seen.add(target.name)


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)

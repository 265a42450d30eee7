"""The modules that run commands: ping, command, shell and script. Each takes a connection and
a call and returns what happened, for the executor to turn into a host result."""

from __future__ import annotations

import os
import posixpath
import secrets
import shlex
from dataclasses import dataclass, field
from typing import Any

import paramiko

from orchestrator.fleet.calls import CommandCall, PingCall, ScriptCall, ShellCall
from orchestrator.fleet.options import FleetOptions
from orchestrator.fleet.output_caps import OutputBudget
from orchestrator.fleet.target import HostTarget
from workers.fleet.connections import Connection
from workers.fleet.errors import ModuleFailed
from workers.fleet.remote_command import CommandOutcome, LineSink, become_command, run_command


@dataclass
class ModuleContext:
    """What a module needs besides the connection: who the host is, the options, and where
    output lines go."""

    target: HostTarget
    options: FleetOptions
    on_line: LineSink | None = None
    output_budget: OutputBudget | None = None  # the job's, shared by all its hosts


@dataclass
class ModuleOutcome:
    """A module's answer: failed or not, changed or not, and the command output if any."""

    failed: bool
    changed: bool
    command: CommandOutcome | None = None
    stdout: str = ""
    error: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


def ping(conn: Connection, call: PingCall, ctx: ModuleContext) -> ModuleOutcome:
    """Logged in already; on a reused connection, prove the session still answers."""
    if conn.reused:
        conn.open_session(timeout=ctx.options.connect_timeout).close()
    return ModuleOutcome(failed=False, changed=False, stdout="pong", data={"ping": "pong"})


def command(conn: Connection, call: CommandCall, ctx: ModuleContext) -> ModuleOutcome:
    line = " ".join(shlex.quote(arg) for arg in call.argv)
    if call.chdir:
        line = f"cd -- {shlex.quote(call.chdir)} && {line}"
    return run_line(conn, line, ctx)


def shell(conn: Connection, call: ShellCall, ctx: ModuleContext) -> ModuleOutcome:
    return run_line(conn, "/bin/sh -c " + shlex.quote(call.cmd), ctx)


def script(conn: Connection, call: ScriptCall, ctx: ModuleContext) -> ModuleOutcome:
    """Upload to a fresh name in remote_tmp (exclusive create), run, and always remove it."""
    if not os.path.isfile(call.path):
        raise ModuleFailed(f"script {call.path} is not a file on this worker")
    remote = posixpath.join(ctx.options.remote_tmp, f".fleet-script-{secrets.token_hex(8)}")
    # Another user (become_user) must be able to read the script to run it.
    mode = 0o755 if ctx.target.become and ctx.target.become_user != ctx.target.user else 0o700
    sftp = open_sftp(conn, ctx)
    try:
        with open(call.path, "rb") as local, sftp.open(remote, "wx") as handle:
            handle.chmod(mode)
            handle.write(local.read())
        try:
            line = " ".join(shlex.quote(a) for a in (remote, *call.args))
            return run_line(conn, line, ctx)
        finally:
            sftp.remove(remote)
    finally:
        sftp.close()


def run_line(conn: Connection, line: str, ctx: ModuleContext) -> ModuleOutcome:
    """Run a command line (with become when asked) as the command module does: it counts as
    changed when it succeeds, as in Ansible."""
    outcome = execute(conn, line, ctx, budget=ctx.output_budget)
    failed = outcome.timed_out or outcome.rc != 0
    error = None
    if outcome.timed_out:
        error = f"command timed out after {ctx.options.command_timeout:g}s"
    elif outcome.rc != 0:
        error = f"non-zero return code {outcome.rc}"
    return ModuleOutcome(failed=failed, changed=not failed, command=outcome, error=error)


def execute(conn: Connection, line: str, ctx: ModuleContext, **kwargs: Any) -> CommandOutcome:
    """``line`` through become, with the run's timeout, cap and line sink."""
    wrapped, stdin = become_command(line, ctx.target)
    kwargs.setdefault("cap", ctx.options.output_cap_bytes)
    kwargs.setdefault("on_line", ctx.on_line)
    return run_command(conn, wrapped, timeout=ctx.options.command_timeout, stdin=stdin, **kwargs)


def open_sftp(conn: Connection, ctx: ModuleContext) -> paramiko.SFTPClient:
    """An SFTP session on the connection (its own channel, closed by the caller)."""
    channel = conn.open_session(timeout=ctx.options.connect_timeout)
    channel.invoke_subsystem("sftp")
    return paramiko.SFTPClient(channel)

"""Runs one command string over an SSH channel: stdout and stderr read at the same time (so
neither pipe can fill and stall the other), lines streamed as they arrive, each stream capped,
and a deadline that closes the channel."""

from __future__ import annotations

import shlex
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

import paramiko

from orchestrator.fleet.output_caps import OutputBudget
from orchestrator.fleet.target import HostTarget
from workers.fleet.connections import Connection

LineSink = Callable[[str, str], None]  # (stream, line)
_CHUNK = 64 * 1024
_MAX_LINE = 64 * 1024  # longer lines are streamed in pieces


@dataclass
class CommandOutcome:
    rc: int | None
    stdout: bytes
    stderr: bytes
    stdout_truncated: bool
    stderr_truncated: bool
    timed_out: bool
    stdout_dropped: int = 0  # bytes the command wrote past a cap
    stderr_dropped: int = 0

    def text(self, stream: str) -> str:
        return (self.stdout if stream == "stdout" else self.stderr).decode("utf-8", "replace")


class StreamCollector:
    """Keeps up to ``cap`` bytes of one stream (or writes them to ``sink``), as long as the
    job's ``budget`` (if any) has room, counts the rest, and hands complete lines to
    ``on_line`` while under the caps."""

    def __init__(
        self,
        name: str,
        cap: int,
        on_line: LineSink | None,
        sink: BinaryIO | None = None,
        budget: OutputBudget | None = None,
    ) -> None:
        self.name, self.cap, self.on_line, self.sink = name, cap, on_line, sink
        self.budget = budget
        self.kept = bytearray()
        self.size = 0  # bytes the command wrote
        self.accepted = 0  # bytes kept (or written to the sink)
        self._partial = b""

    @property
    def truncated(self) -> bool:
        return self.size > self.accepted

    @property
    def dropped(self) -> int:
        return self.size - self.accepted

    def feed(self, chunk: bytes) -> None:
        # Once a byte is dropped nothing later is kept: output with a hole would mislead.
        room = self.cap - self.accepted if not self.truncated else 0
        self.size += len(chunk)
        if room <= 0:
            return
        wanted = min(len(chunk), room)
        granted = self.budget.claim(wanted) if self.budget is not None else wanted
        accepted = chunk[:granted]
        self.accepted += granted
        if self.sink is not None:
            self.sink.write(accepted)
        else:
            self.kept += accepted
        self._emit_lines(accepted)
        if granted < len(chunk) and self.on_line is not None:
            self._emit(self._partial)
            self._partial = b""
            why = "" if granted == wanted else ": the job's output cap is reached"
            self.on_line(self.name, f"[{self.name} truncated after {self.accepted} bytes{why}]")

    def finish(self) -> None:
        if self._partial and not self.truncated:
            self._emit(self._partial)
        self._partial = b""

    def _emit_lines(self, data: bytes) -> None:
        if self.on_line is None:
            return
        *lines, self._partial = (self._partial + data).split(b"\n")
        for line in lines:
            self._emit(line)
        while len(self._partial) > _MAX_LINE:
            self._emit(self._partial[:_MAX_LINE])
            self._partial = self._partial[_MAX_LINE:]

    def _emit(self, line: bytes) -> None:
        if self.on_line is not None and line:
            self.on_line(self.name, line.decode("utf-8", "replace").rstrip("\r"))


def become_command(command: str, target: HostTarget) -> tuple[str, bytes | None]:
    """``command`` run as ``become_user`` through sudo, and what to send on stdin. The
    password goes to sudo's stdin (``-S``), never into argv; the command itself gets
    /dev/null as stdin so it cannot read a password sudo did not ask for."""
    if not target.become:
        return command, None
    inner = "sh -c " + shlex.quote("exec </dev/null\n" + command)
    user = shlex.quote(target.become_user)
    if target.become_password:
        return f"sudo -S -p '' -u {user} -- {inner}", (target.become_password + "\n").encode()
    return f"sudo -n -u {user} -- {inner}", None


def run_command(
    conn: Connection,
    command: str,
    *,
    timeout: float,
    cap: int,
    on_line: LineSink | None = None,
    stdin: bytes | None = None,
    stdout_sink: BinaryIO | None = None,
    budget: OutputBudget | None = None,
) -> CommandOutcome:
    """Run ``command`` (already quoted for the remote shell) and wait for it, at most
    ``timeout`` seconds. With ``stdout_sink``, stdout goes there (capped) instead of memory.
    Output kept counts against the job's ``budget`` when one is given."""
    deadline = time.monotonic() + timeout
    channel = conn.open_session(timeout=min(timeout, 30.0))
    try:
        channel.exec_command(command)
        if stdin:
            channel.sendall(stdin)
        channel.shutdown_write()
        out = StreamCollector("stdout", cap, on_line, stdout_sink, budget)
        err = StreamCollector("stderr", cap, on_line, budget=budget)
        timed_out = _drain(channel, out, err, deadline)
        rc = None
        if not timed_out and channel.status_event.wait(max(0.0, deadline - time.monotonic())):
            rc = channel.exit_status
        timed_out = timed_out or rc is None
        return CommandOutcome(
            rc,
            bytes(out.kept),
            bytes(err.kept),
            out.truncated,
            err.truncated,
            timed_out,
            out.dropped,
            err.dropped,
        )
    finally:
        channel.close()


def _drain(
    channel: paramiko.Channel, out: StreamCollector, err: StreamCollector, deadline: float
) -> bool:
    """Read both streams to EOF; stderr on a helper thread. True when the deadline passed."""
    channel.settimeout(0.25)
    stderr_reader = threading.Thread(
        target=_read_until_eof, args=(channel.recv_stderr, err, deadline), daemon=True
    )
    stderr_reader.start()
    timed_out = _read_until_eof(channel.recv, out, deadline)
    stderr_reader.join(max(0.0, deadline - time.monotonic()) + 1.0)
    return timed_out or stderr_reader.is_alive()


def _read_until_eof(
    recv: Callable[[int], bytes], collector: StreamCollector, deadline: float
) -> bool:
    while time.monotonic() < deadline:
        try:
            chunk = recv(_CHUNK)
        except TimeoutError:
            continue
        if not chunk:
            collector.finish()
            return False
        collector.feed(chunk)
    return True

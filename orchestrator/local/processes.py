"""Child processes of the local stack (and of the tests): started, awaited, stopped by PID."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO


class ServiceProcess:
    """One service: its command, log file, and a readiness probe."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        ready: Callable[[], bool] | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.ready = ready
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self, timeout: float | None = 30.0) -> ServiceProcess:
        """Launch the process; wait until it is ready unless ``timeout`` is None."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            self.argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        if timeout is not None:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.ready is not None and not self.ready():
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode}; "
                    f"see {self.log_path}:\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} not ready after {timeout}s; see {self.log_path}")
            time.sleep(0.05)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the service's whole process group (it may have children)."""
        if self.alive() and self.process is not None:
            os.killpg(self.process.pid, sig)

    def kill_leftovers(self) -> None:
        """SIGKILL what is left of the group once its leader is gone: a gunicorn worker that
        outlived a killed master would keep the port a restarted API needs."""
        if self.process is not None and not self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)

    def restart(self) -> ServiceProcess:
        """Start the same command again, with the same environment and log, once it died."""
        self.kill_leftovers()
        self._close_log()
        return self.start(timeout=None)

    def stop(self, timeout: float = 15.0) -> None:
        if self.process is None:
            return
        if self.alive():
            self.kill(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill(signal.SIGKILL)
                self.process.wait(5)
        else:
            self.process.wait()
        self.kill_leftovers()
        self._close_log()

    def _close_log(self) -> None:
        if self._log:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> Callable[[], bool]:
    def probe() -> bool:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return True
        except OSError:
            return False

    return probe


def redis_server(
    port: int, directory: Path, *, log_path: Path, password: str | None = None
) -> ServiceProcess:
    """A redis-server on 127.0.0.1:``port`` keeping an append-only file in ``directory``;
    with ``password``, clients must AUTH with it."""
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "redis.conf"
    # The password goes in a file only root reads, not on the command line, which every local
    # user can see in ps.
    config.touch(mode=0o600)
    config.chmod(0o600)
    config.write_text(f"requirepass {password}\n" if password else "")
    argv = [
        "redis-server",
        str(config),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(directory),
        "--save",
        "",
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--daemonize",
        "no",
        "--protected-mode",
        "yes",
    ]
    return ServiceProcess("redis", argv, log_path=log_path, ready=port_open(port))

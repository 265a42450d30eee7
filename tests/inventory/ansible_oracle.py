"""Runs the real ansible-core commands of the venv, sealed off in a temporary directory.

Ansible gets its own ``ANSIBLE_HOME``, temp dir and working directory (so no ``ansible.cfg`` or
``group_vars`` of the checkout is read, and nothing is written outside the temp dir); inventory
reading touches no network.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
PROBE = Path(__file__).with_name("ansible_probe.py")


class Ansible:
    """The ansible, ansible-inventory and probe commands, run from ``workdir``."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        home = workdir / "ansible-home"
        home.mkdir(exist_ok=True)
        keep = ("PATH", "LANG", "LC_ALL", "HOME")
        self.env = {k: os.environ[k] for k in keep if k in os.environ}
        self.env.update(
            ANSIBLE_HOME=str(home),
            ANSIBLE_LOCAL_TEMP=str(home / "tmp"),
            ANSIBLE_REMOTE_TEMP=str(home / "remote-tmp"),
            ANSIBLE_CONFIG=str(workdir / "no-ansible.cfg"),
            ANSIBLE_INVENTORY_UNPARSED_WARNING="False",
            ANSIBLE_INVENTORY_UNPARSED_FAILED="True",
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_FORCE_COLOR="0",
            ANSIBLE_DEPRECATION_WARNINGS="False",
            ANSIBLE_RETRY_FILES_ENABLED="False",
            ANSIBLE_GATHERING="explicit",
            PYTHONDONTWRITEBYTECODE="1",
        )

    def run(self, *argv: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv,
            input=stdin,
            capture_output=True,
            text=True,
            cwd=self.workdir,
            env=self.env,
            timeout=60,
            check=False,
        )

    def inventory_list(self, inventory: Path, limit: str | None = None) -> dict[str, Any]:
        argv = [str(BIN / "ansible-inventory"), "-i", str(inventory), "--list"]
        if limit:
            argv += ["--limit", limit]
        done = self.run(*argv)
        assert done.returncode == 0, done.stderr
        result: dict[str, Any] = json.loads(done.stdout)
        return result

    def list_hosts(self, inventory: Path, pattern: str, limit: str | None = None) -> str:
        """What ``ansible PATTERN -i INVENTORY --list-hosts`` prints (stdout)."""
        argv = [str(BIN / "ansible"), pattern, "-i", str(inventory), "--list-hosts"]
        if limit:
            argv += ["--limit", limit]
        return self.run(*argv).stdout

    def probe(self, inventory: Path, queries: list[tuple[str, str | None]]) -> list[dict[str, Any]]:
        request = json.dumps({"inventory": str(inventory), "queries": queries})
        done = self.run(sys.executable, str(PROBE), stdin=request)
        assert done.returncode == 0, done.stderr
        answers: list[dict[str, Any]] = json.loads(done.stdout)
        return answers

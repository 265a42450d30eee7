"""Every module on every host of a 20-host sshd fleet."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from orchestrator.fleet.calls import (
    CommandCall,
    CopyCall,
    FetchCall,
    PingCall,
    ScriptCall,
    ShellCall,
)
from orchestrator.fleet.options import FleetOptions
from orchestrator.fleet.results import HostStatus
from tests.support.sshd import SshdFleet
from workers.fleet.connections import ConnectionPool
from workers.fleet.executor import run_fleet


def test_ping_answers_pong_on_every_host(fleet: SshdFleet, options, pool) -> None:
    result = run_fleet(fleet.targets(), PingCall(), options, pool=pool)

    assert len(result) == len(fleet.hosts) >= 20
    assert set(result.succeeded) == {h.name for h in fleet.hosts}
    for host_result in result.values():
        assert host_result.status is HostStatus.OK
        assert host_result.stdout == "pong"
        assert host_result.host_key_check == "matched"
        assert host_result.durations_ms["connect"] > 0


def test_command_passes_each_argument_untouched_by_the_shell(fleet, options, pool) -> None:
    argv = ["printf", "%s|", "a b", "$HOME", "; echo injected", "'q'"]
    result = run_fleet(fleet.targets(), CommandCall(argv=argv), options, pool=pool)

    for host_result in result.values():
        assert host_result.status is HostStatus.CHANGED  # command always changes, as in Ansible
        assert host_result.rc == 0
        assert host_result.stdout == "a b|$HOME|; echo injected|'q'|"


def test_command_runs_in_chdir(fleet, options, pool) -> None:
    result = run_fleet(fleet.targets(), CommandCall(argv=["pwd"], chdir="/usr"), options, pool=pool)
    assert {r.stdout.strip() for r in result.values()} == {"/usr"}


def test_shell_runs_pipes_and_reports_the_exit_code(fleet, options, pool) -> None:
    call = ShellCall(cmd="echo one two | wc -w; echo oops >&2; exit 3")
    result = run_fleet(fleet.targets(), call, options, pool=pool)

    assert set(result.failed) == {h.name for h in fleet.hosts}
    for host_result in result.values():
        assert host_result.rc == 3
        assert host_result.stdout.strip() == "2"
        # The login shell's rc files may add warnings of their own before ours.
        assert host_result.stderr.splitlines()[-1] == "oops"
        assert host_result.error == "non-zero return code 3"


def test_script_is_uploaded_run_with_args_and_removed(fleet, options, pool, tmp_path) -> None:
    script = tmp_path / "hello.sh"
    script.write_text('#!/bin/sh\necho "hello $1 from $0"\n')
    result = run_fleet(
        fleet.targets(), ScriptCall(path=str(script), args=["fleet"]), options, pool=pool
    )

    for host_result in result.values():
        assert host_result.status is HostStatus.CHANGED, host_result.error
        assert host_result.stdout.startswith("hello fleet from /tmp/.fleet-script-")
        remote_path = host_result.stdout.split()[-1]
        assert not os.path.exists(remote_path)  # the hosts share this machine's filesystem


def test_copy_then_fetch_on_every_host(fleet: SshdFleet, options, pool, tmp_path: Path) -> None:
    src = tmp_path / "motd"
    src.write_bytes(b"fleet motd\n" * 100)
    dest = tmp_path / "remote" / "motd"
    dest.parent.mkdir()
    # The hosts share this machine's filesystem: 20 hosts renaming into one path at once is
    # also a check that the temp-file-then-rename never leaves a partial file behind.
    copied = run_fleet(
        fleet.targets(), CopyCall(src=str(src), dest=str(dest), mode="0640"), options, pool=pool
    )
    assert set(copied.succeeded) == {h.name for h in fleet.hosts}
    assert dest.read_bytes() == src.read_bytes()
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o640
    assert [p.name for p in dest.parent.iterdir()] == ["motd"]  # no temp files left

    local = tmp_path / "fetched"
    fetched = run_fleet(
        fleet.targets(), FetchCall(src=str(dest), dest=str(local)), options, pool=pool
    )
    for host in fleet.hosts:
        result = fetched[host.name]
        assert result.status is HostStatus.CHANGED, result.error
        copy_back = local / host.name / str(dest).lstrip("/")
        assert copy_back.read_bytes() == src.read_bytes()
        assert result.data["dest"] == str(copy_back)


def test_become_runs_as_the_become_user(fleet, options, pool) -> None:
    import shutil

    import pytest

    if not shutil.which("sudo"):
        pytest.skip("sudo is not installed (Debian package sudo)")
    targets = fleet.targets(become=True, become_user="nobody")
    result = run_fleet(targets, CommandCall(argv=["id", "-un"]), options, pool=pool)
    assert {r.stdout.strip() for r in result.values()} == {"nobody"}


def test_recap_counts_like_ansible(fleet, options: FleetOptions, pool: ConnectionPool) -> None:
    result = run_fleet(fleet.targets()[:2], ShellCall(cmd="true"), options, pool=pool)
    for counts in result.recap().values():
        assert (counts.ok, counts.changed, counts.failed, counts.unreachable) == (1, 1, 0, 0)
    assert "ok=1" in result.format_recap() and "changed=1" in result.format_recap()

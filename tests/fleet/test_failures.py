"""Hosts that cannot be reached, logged in to, or finished with: each fails alone, the way a
user of the results would see it."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator

import pytest

from orchestrator.fleet.calls import CommandCall, PingCall, ShellCall
from orchestrator.fleet.results import HostStatus
from tests.support.sshd import SshdFleet, keygen
from workers.fleet.executor import run_fleet


def test_stopped_sshd_is_unreachable_while_the_others_succeed(
    fleet: SshdFleet, spare_host, options, pool
) -> None:
    spare_host.stop()
    targets = fleet.targets()[:3] + fleet.targets([spare_host])
    result = run_fleet(targets, PingCall(), options, pool=pool)

    assert set(result.unreachable) == {spare_host.name}
    assert "refused" in (result[spare_host.name].error or "")
    assert len(result.succeeded) == 3
    assert result.recap()[spare_host.name].unreachable == 1


def test_wrong_key_fails_authentication_for_that_host_only(
    fleet: SshdFleet, options, pool, tmp_path
) -> None:
    wrong_key = tmp_path / "wrong_key"
    keygen(wrong_key)
    good = fleet.targets(fleet.hosts[:2])
    bad = fleet.targets(fleet.hosts[2:3], key_file=str(wrong_key))
    result = run_fleet(good + bad, ShellCall(cmd="true"), options, pool=pool)

    bad_name = fleet.hosts[2].name
    assert set(result.unreachable) == {bad_name}  # Ansible also counts auth failure as such
    assert "authentication failed" in (result[bad_name].error or "")
    assert len(result.succeeded) == 2


def test_passwords_never_appear_in_results_logs_or_output(
    fleet: SshdFleet, options, pool, caplog
) -> None:
    secret = "Tr0ub4dor-fleet-secret"
    lines: list[tuple[str, str, str]] = []
    # A password login on a publickey-only host fails, and the command echoes the secret.
    refused = fleet.targets(fleet.hosts[:1], key_file=None, password=secret)
    echoing = fleet.targets(fleet.hosts[1:2], become_password=secret)
    with caplog.at_level(logging.DEBUG):
        result = run_fleet(
            refused + echoing,
            CommandCall(argv=["echo", f"the password is {secret}"]),
            options,
            lambda *line: lines.append(line),
            pool=pool,
        )

    assert result[fleet.hosts[0].name].status is HostStatus.UNREACHABLE
    echoed = result[fleet.hosts[1].name]
    assert echoed.stdout.strip() == "the password is ********"
    assert secret not in str(result.to_dict())
    assert secret not in caplog.text
    assert lines and all(secret not in line for _, _, line in lines)
    assert secret not in repr(refused[0])


@pytest.fixture
def silent_listener() -> Iterator[tuple[str, int]]:
    """A TCP port on loopback that accepts connections and never says a word."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()


def test_host_that_never_speaks_hits_the_connect_timeout(
    fleet, silent_listener, options, pool
) -> None:
    address, port = silent_listener
    (hung,) = fleet.targets(fleet.hosts[:1], name="hung", address=address, port=port)
    connect_timeout = 1.0
    result = run_fleet(
        [hung, *fleet.targets()[:2]],
        PingCall(),
        options.model_copy(update={"connect_timeout": connect_timeout}),
        pool=pool,
    )

    hung_result = result["hung"]
    assert hung_result.status is HostStatus.UNREACHABLE
    assert "handshake" in (hung_result.error or "")
    # The listener accepts and then never says a word, so only a deadline can end the wait;
    # giving up no sooner than the timeout says shows it was that deadline.
    assert hung_result.durations_ms["total"] >= connect_timeout * 1000
    assert len(result.succeeded) == 2


def test_command_that_sleeps_hits_the_command_timeout(fleet, options, pool) -> None:
    result = run_fleet(
        fleet.targets()[:2],
        ShellCall(cmd="echo started; sleep 30; echo finished"),
        options.model_copy(update={"command_timeout": 1.5}),
        pool=pool,
    )

    for host_result in result.values():
        assert host_result.status is HostStatus.FAILED
        assert host_result.rc is None
        assert host_result.error == "command timed out after 1.5s"
        # What came before the timeout is kept; what the command would print after its sleep
        # never arrives, so the run did not wait for the command to end.
        assert host_result.stdout == "started\n"
        assert host_result.durations_ms["exec"] >= 1500


def test_two_megabytes_on_stdout_and_stderr_at_once_come_back_whole(fleet, options, pool) -> None:
    size = 2 * 1024 * 1024
    cmd = f"(yes a | head -c {size}) & (yes b | head -c {size} >&2) & wait"
    result = run_fleet(
        fleet.targets()[:3],
        ShellCall(cmd=cmd),
        options.model_copy(update={"output_cap_bytes": 4 * 1024 * 1024}),
        pool=pool,
    )

    for host_result in result.values():
        assert host_result.status is HostStatus.CHANGED, host_result.error
        assert host_result.stdout == "a\n" * (size // 2)
        # endswith: the login shell's rc files may warn on stderr before the command starts.
        assert host_result.stderr.endswith("b\n" * (size // 2))
        assert "b" not in host_result.stderr[:-size]
        assert not host_result.stdout_truncated and not host_result.stderr_truncated


def test_output_over_the_cap_is_truncated_and_says_so(fleet, options, pool) -> None:
    lines: list[tuple[str, str, str]] = []
    result = run_fleet(
        fleet.targets()[:1],
        ShellCall(cmd="seq 1 100000; echo small >&2"),
        options.model_copy(update={"output_cap_bytes": 4096}),
        lambda *line: lines.append(line),
        pool=pool,
    )

    (host_result,) = result.values()
    assert host_result.status is HostStatus.CHANGED  # the command itself succeeded
    assert len(host_result.stdout) == 4096 and host_result.stdout.startswith("1\n2\n3\n")
    assert host_result.stdout_truncated and not host_result.stderr_truncated
    assert host_result.stderr.endswith("small\n")
    streamed = [line for _, stream, line in lines if stream == "stdout"]
    assert streamed[:3] == ["1", "2", "3"]
    assert streamed[-1] == "[stdout truncated after 4096 bytes]"

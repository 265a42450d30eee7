"""Waiting until a started VM is as ready as ``wait_for`` asks: running, with an address, or
answering on port 22.

Polls with backoff (from a fifth of a second up to two seconds between looks), stops early on a
cancel request or when the domain stops, and fails naming what was still missing at the
deadline. The job's own deadline is this one: Celery's thread pool enforces no time limit.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

import libvirt

from orchestrator.errors import JobFailed
from workers.context import JobContext
from workers.domains.addresses import GuestAddress, guest_addresses, primary_address

SSH_PORT = 22
_FIRST_DELAY = 0.2
_MAX_DELAY = 2.0
_CONNECT_TIMEOUT = 2.0


@dataclass(frozen=True)
class Readiness:
    """What the wait saw last: the addresses, the one to reach the guest at, and the furthest
    of running, address and ssh that was reached."""

    addresses: list[GuestAddress]
    address: str | None
    reached: str


def wait_until_ready(
    ctx: JobContext, domain: libvirt.virDomain, wait_for: str, timeout: float
) -> Readiness:
    """The domain's readiness once ``wait_for`` is met; JobFailed at ``timeout`` seconds."""
    if wait_for != "running":
        ctx.event(f"waiting up to {timeout:g}s for {_goal(wait_for)}")
    deadline = time.monotonic() + timeout
    delay = _FIRST_DELAY
    announced: str | None = None
    while True:
        seen = _look(domain, wait_for == "ssh", deadline)
        if seen.address is not None and seen.address != announced:
            announced = seen.address
            ctx.event(
                f"domain {domain.name()} has address {seen.address} ({seen.addresses[0].source})",
                data={"address": seen.address, "source": seen.addresses[0].source},
            )
        if _met(seen, wait_for):
            return seen
        _check_still_waiting(ctx, domain, seen, wait_for, timeout, deadline)
        time.sleep(max(0.0, min(delay, deadline - time.monotonic())))
        delay = min(delay * 1.5, _MAX_DELAY)


def _look(domain: libvirt.virDomain, probe_ssh: bool, deadline: float) -> Readiness:
    addresses = guest_addresses(domain)
    address = primary_address(addresses)
    reached = "running" if domain.isActive() else "stopped"
    if address is not None:
        reached = "address"
    # Only a job that asked for ssh connects to the guest.
    if address is not None and probe_ssh:
        budget = min(_CONNECT_TIMEOUT, max(0.1, deadline - time.monotonic()))
        if ssh_port_open(address, budget):
            reached = "ssh"
    return Readiness(addresses, address, reached)


def ssh_port_open(address: str, timeout: float) -> bool:
    """Whether a TCP connection to port 22 of ``address`` is accepted."""
    try:
        with socket.create_connection((address, SSH_PORT), timeout=timeout):
            return True
    except OSError:
        return False


_ORDER = ("stopped", "running", "address", "ssh")


def _met(seen: Readiness, wait_for: str) -> bool:
    return _ORDER.index(seen.reached) >= _ORDER.index(wait_for)


def _check_still_waiting(
    ctx: JobContext,
    domain: libvirt.virDomain,
    seen: Readiness,
    wait_for: str,
    timeout: float,
    deadline: float,
) -> None:
    name = domain.name()
    if seen.reached == "stopped":
        raise JobFailed(f"domain {name} stopped while waiting for {_goal(wait_for)}")
    if ctx.cancel_requested():
        raise JobFailed(f"cancelled while waiting for {_goal(wait_for)} of domain {name}")
    if time.monotonic() >= deadline:
        found = f"; it has address {seen.address}" if seen.address else "; it has no address"
        raise JobFailed(f"domain {name} did not reach {_goal(wait_for)} within {timeout:g}s{found}")


def _goal(wait_for: str) -> str:
    return {
        "running": "running",
        "address": "an address",
        "ssh": f"port {SSH_PORT} accepting connections",
    }[wait_for]

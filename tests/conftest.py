"""Fixtures shared by every test package."""

from __future__ import annotations

from collections.abc import Iterator

import libvirt
import pytest

from tests.support.libvirtd import QEMU_URI, ensure_libvirtd


@pytest.fixture(scope="session")
def qemu_uri() -> str:
    """``qemu:///system`` on a running libvirtd, started here when needed."""
    reason = ensure_libvirtd()
    if reason:
        pytest.skip(reason)
    return QEMU_URI


@pytest.fixture
def qemu_conn(qemu_uri: str) -> Iterator[libvirt.virConnect]:
    conn = libvirt.open(qemu_uri)
    yield conn
    conn.close()


@pytest.fixture
def test_conn() -> Iterator[libvirt.virConnect]:
    """A private ``test:///default`` hypervisor (its state lives in this process only)."""
    conn = libvirt.open("test:///default")
    yield conn
    conn.close()

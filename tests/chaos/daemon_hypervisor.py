"""A test-driver hypervisor served by a private libvirtd (the session daemon of
:mod:`tests.support.session_libvirt`) rather than inside its worker: its domains outlive the
worker, so after a worker is killed the driver can still check that libvirt holds exactly what
the succeeded jobs made; and the daemon itself can be restarted under the worker.

The test driver keeps its default hypervisor in the daemon for as long as one connection to it
is open: the driver keeps one (``keeper``) for the whole run. A daemon restart starts it afresh,
as a host rebuilt; the pool the jobs use is defined again each time, as libvirt would have kept
it on disk.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import libvirt

from tests.support.session_libvirt import SessionLibvirt, session_libvirtd

NAME = "hv-l"
FILLER = "chaos-filler.img"
# The daemon runs as an unprivileged user: its directory lies where that user may traverse.
PARENT = Path("/var/tmp")


@dataclass
class DaemonHypervisor:
    session: SessionLibvirt
    pool_path: Path
    name: str = NAME
    keeper: libvirt.virConnect | None = None

    @property
    def uri(self) -> str:
        socket = self.session.uri.split("socket=", 1)[1]
        return f"test+unix:///default?socket={socket}"

    def prepare(self) -> None:
        """The hypervisor as the jobs expect it: pool ``default``, and no domain yet (the
        driver's sample one removed)."""
        self.keeper = libvirt.open(self.uri)
        self._remove_domains()
        xml = (
            "<pool type='dir'><name>default</name>"
            f"<target><path>{self.pool_path}</path></target></pool>"
        )
        self.keeper.storagePoolCreateXML(xml, 0)

    def clear(self) -> None:
        """Remove every domain and every volume of pool ``default``: the test driver has room
        for only so many (16 CPUs, 3 GiB)."""
        assert self.keeper is not None
        self._remove_domains()
        for volume in self.keeper.storagePoolLookupByName("default").listAllVolumes():
            volume.delete(0)

    def _remove_domains(self) -> None:
        assert self.keeper is not None
        for domain in self.keeper.listAllDomains():
            if domain.isActive():
                domain.destroy()
            domain.undefine()

    def volumes(self) -> set[str]:
        """The volumes of pool ``default``, asked directly."""
        assert self.keeper is not None
        pool = self.keeper.storagePoolLookupByName("default")
        return {volume.name() for volume in pool.listAllVolumes()}

    def fill(self, leave_bytes: int) -> libvirt.virStorageVol:
        """A volume taking all of pool ``default`` but ``leave_bytes``: its disk filling up."""
        assert self.keeper is not None
        pool = self.keeper.storagePoolLookupByName("default")
        size = max(0, pool.info()[3] - leave_bytes)
        xml = (
            f"<volume><name>{FILLER}</name><capacity>{size}</capacity>"
            f"<allocation>{size}</allocation><target><format type='raw'/></target></volume>"
        )
        return pool.createXML(xml, 0)

    def domains(self) -> set[str]:
        """What libvirt holds, asked directly."""
        assert self.keeper is not None
        return {domain.name() for domain in self.keeper.listAllDomains()}

    def restart(self, down_seconds: float) -> float:
        """Stop libvirtd (SIGTERM), start it again after ``down_seconds``: the worker's
        connections break under it."""
        self._drop_keeper()
        self.session.process.stop()
        time.sleep(down_seconds)
        self.session.process.start(timeout=60)
        self.prepare()
        return down_seconds

    def _drop_keeper(self) -> None:
        if self.keeper is not None:
            with contextlib.suppress(libvirt.libvirtError):
                self.keeper.close()
            self.keeper = None


@contextmanager
def daemon_hypervisor(pool_path: Path) -> Iterator[DaemonHypervisor]:
    with session_libvirtd(PARENT) as session:
        hypervisor = DaemonHypervisor(session, pool_path)
        hypervisor.prepare()
        try:
            yield hypervisor
        finally:
            hypervisor._drop_keeper()

"""The jobs of a chaos trial: the batch the fault hits, and the jobs sent once it is over."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from tests.support.sshd import SshdFleet

VM_PARAMS = {"memory_mib": 16, "disk": {"pool": "default", "size": "1G"}, "graphics": "none"}
# Placement spreads by free memory, and the libvirtd-served hypervisor's test driver has far
# less than the others: these VMs of each batch name it, the rest are placed.
PINNED_TO_DAEMON = 2
VOLUMES = 2  # volume.create jobs per batch, on the libvirtd-served hypervisor


@dataclass(frozen=True)
class Planned:
    """A job to send, with what it makes: a domain name, a volume of the daemon's pool."""

    body: dict[str, Any]
    domain: str | None = None
    volume: str | None = None


@dataclass(frozen=True)
class BatchPlan:
    """Hypervisors (``daemon``: the libvirtd-served one), the sshd hosts and their login."""

    hypervisors: tuple[str, ...]
    daemon: str
    sshd: SshdFleet
    login_user: str
    worker_threads: int

    def batch(self, tag: str, rng: random.Random, vms: int) -> list[Planned]:
        """VMs, volumes, pings and fleet jobs on a hypervisor each, in random order."""
        planned = [self._vm(f"{tag}-vm{index}", index) for index in range(vms)]
        for index in range(VOLUMES):
            volume = f"{tag}-vol{index}.qcow2"
            spec = {"pool": "default", "name": volume, "capacity": "1G"}
            body = {"kind": "volume.create", "params": spec, "hypervisor": self.daemon}
            planned.append(Planned(body, volume=volume))
        for _ in range(2):
            delay = {"delay": round(rng.uniform(0.5, 2.5), 2)}
            planned.append(Planned({"kind": "ping", "params": delay, "hypervisor": self._hv(rng)}))
        for _ in range(2):
            command = f"sleep {rng.uniform(0.5, 2.0):.2f}; echo done"
            params = {**self.fleet_params(), "call": {"module": "shell", "cmd": command}}
            body = {"kind": "fleet.run", "params": params, "hypervisor": self._hv(rng)}
            planned.append(Planned(body))
        ping = {"kind": "fleet.ping", "params": self.fleet_params(), "hypervisor": self._hv(rng)}
        planned.append(Planned(ping))
        rng.shuffle(planned)
        return planned

    def after_fault(self) -> list[Planned]:
        """Jobs sent once the fault is over, which must all succeed: per hypervisor, more
        libvirt reads than its worker has threads (each thread holds its own connection) and
        a ping of every sshd host through the worker's pooled SSH connections."""
        planned = []
        for hypervisor in (*self.hypervisors, self.daemon):
            facts = {"kind": "hypervisor.facts", "params": {}, "hypervisor": hypervisor}
            planned += [Planned(facts)] * (self.worker_threads + 2)
            ping = {"kind": "fleet.ping", "params": self.fleet_params(), "hypervisor": hypervisor}
            planned.append(Planned(ping))
        return planned

    def fleet_params(self) -> dict[str, Any]:
        """Every sshd host, in an inline inventory."""
        lines = ["[web]"]
        lines += [
            f"{h.name} ansible_host={h.address} ansible_port={h.port}" for h in self.sshd.hosts
        ]
        user = f"ansible_user={self.login_user}"
        lines += ["[web:vars]", user, "ansible_private_key_file=fleet.key"]
        options: dict[str, Any] = {
            "known_hosts_files": [str(self.sshd.known_hosts)],
            "connect_timeout": 5,
            "connect_retries": 0,
            "command_timeout": 30,
        }
        return {"inventory": "\n".join(lines) + "\n", "options": options}

    def _vm(self, name: str, index: int) -> Planned:
        body: dict[str, Any] = {"kind": "vm.provision", "params": {"name": name, **VM_PARAMS}}
        if index < PINNED_TO_DAEMON:
            body["hypervisor"] = self.daemon
        return Planned(body, domain=name)

    def _hv(self, rng: random.Random) -> str:
        return rng.choice((*self.hypervisors, self.daemon))

"""Read what a hypervisor is, through libvirt-python: versions, CPU, memory, pools, networks.

What its heartbeat reports every few seconds is read by :mod:`workers.capacity`.
"""

from __future__ import annotations

from typing import Any

import libvirt

_DOMAIN_STATES = {
    libvirt.VIR_DOMAIN_NOSTATE: "nostate",
    libvirt.VIR_DOMAIN_RUNNING: "running",
    libvirt.VIR_DOMAIN_BLOCKED: "blocked",
    libvirt.VIR_DOMAIN_PAUSED: "paused",
    libvirt.VIR_DOMAIN_SHUTDOWN: "shutdown",
    libvirt.VIR_DOMAIN_SHUTOFF: "shutoff",
    libvirt.VIR_DOMAIN_CRASHED: "crashed",
    libvirt.VIR_DOMAIN_PMSUSPENDED: "pmsuspended",
}


def domain_state_name(state: int) -> str:
    return _DOMAIN_STATES.get(state, "unknown")


def version_string(number: int) -> str:
    """libvirt's packed version (major * 1e6 + minor * 1e3 + micro) as ``major.minor.micro``."""
    return f"{number // 1_000_000}.{number // 1000 % 1000}.{number % 1000}"


def leased_addresses(dom: libvirt.virDomain) -> list[str]:
    """IPv4 addresses the libvirt network's DHCP leased to the running domain ``dom``.

    The heartbeat's capacity read uses these rather than
    :func:`~workers.domains.addresses.guest_addresses`, which also asks a guest's agent: libvirt
    waits on that through the guest (5 s for its sync, then without limit for the command,
    behind any other agent call to the domain), and one wedged guest would stall the read that
    placement needs fresh every few seconds.
    """
    try:
        interfaces = dom.interfaceAddresses(libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE)
    except libvirt.libvirtError:
        return []  # drivers without lease information (the test driver, bridged guests)
    return [
        address["addr"]
        for interface in interfaces.values()
        for address in interface.get("addrs") or []
        if address.get("type") == libvirt.VIR_IP_ADDR_TYPE_IPV4
    ]


def read_facts(conn: libvirt.virConnect) -> dict[str, Any]:
    model, memory_mib, cpus, mhz, nodes, sockets, cores, threads = conn.getInfo()
    return {
        "hostname": conn.getHostname(),
        "uri": conn.getURI(),
        "driver": conn.getType(),
        "libvirt_version": version_string(conn.getLibVersion()),
        "hypervisor_version": version_string(conn.getVersion()),
        "cpu": {
            "count": cpus,
            "model": model,
            "mhz": mhz,
            "numa_nodes": nodes,
            "sockets": sockets,
            "cores": cores,
            "threads": threads,
        },
        "memory_mib": memory_mib,
        "free_memory_mib": conn.getFreeMemory() // (1024 * 1024),
        "storage_pools": [_pool_facts(pool) for pool in conn.listAllStoragePools()],
        "networks": [
            {"name": net.name(), "active": bool(net.isActive()), "bridge": _bridge(net)}
            for net in conn.listAllNetworks()
        ],
        "domains": [_domain_facts(dom) for dom in conn.listAllDomains()],
    }


def _pool_facts(pool: libvirt.virStoragePool) -> dict[str, Any]:
    _, capacity, allocation, available = pool.info()
    return {
        "name": pool.name(),
        "active": bool(pool.isActive()),
        "capacity": capacity,
        "allocation": allocation,
        "available": available,
    }


def _domain_facts(dom: libvirt.virDomain) -> dict[str, Any]:
    state, max_memory_kib, _, vcpus, _ = dom.info()
    return {
        "name": dom.name(),
        "uuid": dom.UUIDString(),
        "state": domain_state_name(state),
        "vcpus": vcpus,
        "memory_mib": max_memory_kib // 1024,
    }


def _bridge(net: libvirt.virNetwork) -> str | None:
    try:
        return str(net.bridgeName())
    except libvirt.libvirtError:
        return None

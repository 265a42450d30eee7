"""A running domain's IP addresses as libvirt reports them: the network's DHCP leases first,
then the guest agent, then the host's ARP table.

Each source answers for different guests: a lease only for NICs on a libvirt network with DHCP,
the agent only when qemu-guest-agent runs in the guest, ARP only once the guest has sent traffic
the host saw. The first source that reports any address is the answer.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from typing import Any

import libvirt

SOURCES = (
    ("lease", libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE),
    ("agent", libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT),
    ("arp", libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_ARP),
)
_AGENT_CHANNEL = "devices/channel/target[@name='org.qemu.guest_agent.0']"


@dataclass(frozen=True)
class GuestAddress:
    """One address of one of the guest's NICs, and the source that reported it."""

    address: str
    prefix: int | None
    family: str  # ipv4 or ipv6
    mac: str | None
    interface: str
    source: str  # lease, agent or arp

    def as_result(self) -> dict[str, Any]:
        return asdict(self)


def guest_addresses(
    domain: libvirt.virDomain, live_xml: ET.Element | None = None
) -> list[GuestAddress]:
    """The addresses of the first source that reports any; none for a domain not running.
    ``live_xml``: the domain's live XML, when the caller has parsed it already."""
    if not domain.isActive():
        return []
    agent = _agent_connected(domain, live_xml)
    for name, source in SOURCES:
        if name == "agent" and not agent:
            continue  # asking a guest without a running agent only waits for its timeout
        found = _from_source(domain, name, source)
        if found:
            return found
    return []


def primary_address(addresses: list[GuestAddress]) -> str | None:
    """The address to reach the guest at: its first IPv4 address, else its first address."""
    ipv4 = [a.address for a in addresses if a.family == "ipv4"]
    return next(iter(ipv4 or [a.address for a in addresses]), None)


def _from_source(domain: libvirt.virDomain, name: str, source: int) -> list[GuestAddress]:
    try:
        interfaces = domain.interfaceAddresses(source)
    except libvirt.libvirtError:
        return []  # the source does not apply here (no agent, a driver without leases)
    found = []
    for interface, details in sorted((interfaces or {}).items()):
        for addr in details.get("addrs") or []:
            if interface == "lo" or _is_loopback_of_guest(addr.get("addr", ""), name):
                continue
            found.append(
                GuestAddress(
                    address=addr["addr"],
                    prefix=addr.get("prefix"),
                    family="ipv6" if addr.get("type") == libvirt.VIR_IP_ADDR_TYPE_IPV6 else "ipv4",
                    mac=details.get("hwaddr"),
                    interface=interface,
                    source=name,
                )
            )
    return found


def _is_loopback_of_guest(address: str, source: str) -> bool:
    # The agent lists the guest's own loopback addresses, which reach the guest from nowhere.
    return source == "agent" and (address.startswith("127.") or address == "::1")


def _agent_connected(domain: libvirt.virDomain, root: ET.Element | None) -> bool:
    """Whether the domain has a guest agent channel that qemu sees connected."""
    if root is None:
        try:
            root = ET.fromstring(domain.XMLDesc(0))
        except libvirt.libvirtError:
            return False
    target = root.find(_AGENT_CHANNEL)
    return target is not None and target.get("state") == "connected"

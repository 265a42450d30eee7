"""Libvirt domain XML from a domain spec: defaults filled by one pure step, rendering by another.

``fill_defaults(spec, osinfo, host) -> ResolvedSpec`` decides; ``render_domain_xml(resolved)``
writes, one small builder per device.
"""

from orchestrator.domains.domxml.defaults import fill_defaults
from orchestrator.domains.domxml.domain import render_domain_xml
from orchestrator.domains.domxml.resolved import HostDefaults, ResolvedSpec

__all__ = ["HostDefaults", "ResolvedSpec", "fill_defaults", "render_domain_xml"]

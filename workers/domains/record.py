"""The spec a domain was defined from, kept in its own XML (``<metadata>``) for "ensure" checks.

Defining the same spec again must change nothing and another spec must be refused naming the
differences; libvirt rewrites the XML it is given (addresses, controllers, MACs), so comparing
XML would not tell. The spec itself is compared instead. It holds no secret: a job's display
password comes from a file on the hypervisor, and the record keeps only that file's path.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

from orchestrator.domains.domxml.domain import LIBOSINFO_NS
from orchestrator.domains.spec import DomainSpec

SPEC_NS = "urn:orchestrator:domain-spec:1"
# Fields that say what to do now rather than what the domain is; the job ensures them instead.
ACTION_FIELDS = frozenset({"start", "autostart"})

ET.register_namespace("libosinfo", LIBOSINFO_NS)
ET.register_namespace("orch", SPEC_NS)


def spec_record(spec: DomainSpec) -> dict[str, Any]:
    """The spec as stored: JSON values, action fields left out."""
    record = spec.model_dump(mode="json", exclude=set(ACTION_FIELDS))
    if record["graphics"].get("password_file") is None:
        # Records written before password_file existed lack the key; unset, it changes nothing.
        del record["graphics"]["password_file"]
    return record


def with_spec_record(xml: str, spec: DomainSpec) -> str:
    """``xml`` with the spec record added to its ``<metadata>`` (created when missing)."""
    root = ET.fromstring(xml)
    metadata = root.find("metadata")
    if metadata is None:
        metadata = ET.Element("metadata")
        root.insert(_after_identity(root), metadata)
    element = ET.SubElement(metadata, f"{{{SPEC_NS}}}spec")
    element.text = json.dumps(spec_record(spec), sort_keys=True)
    ET.indent(root, space="  ")
    return ET.tostring(root, encoding="unicode") + "\n"


def read_spec_record(xml: str) -> dict[str, Any] | None:
    """The stored record, or None for a domain not defined through this service."""
    found = ET.fromstring(xml).find(f"metadata/{{{SPEC_NS}}}spec")
    if found is None or not found.text:
        return None
    record: dict[str, Any] = json.loads(found.text)
    return record


def record_differences(wanted: dict[str, Any], actual: dict[str, Any]) -> list[dict[str, Any]]:
    """Each top-level field whose value differs, as ``{"field", "wanted", "actual"}``."""
    return [
        {"field": key, "wanted": wanted.get(key), "actual": actual.get(key)}
        for key in sorted(set(wanted) | set(actual))
        if wanted.get(key) != actual.get(key)
    ]


def describe_differences(diffs: list[dict[str, Any]]) -> str:
    return "; ".join(
        f"{d['field']}: wanted {json.dumps(d['wanted'])}, found {json.dumps(d['actual'])}"
        for d in diffs
    )


def _after_identity(root: ET.Element) -> int:
    # libvirt's schema puts <metadata> after <name>, <uuid>, <title> and <description>.
    index = 0
    for position, child in enumerate(root):
        if child.tag in ("name", "uuid", "title", "description"):
            index = position + 1
    return index

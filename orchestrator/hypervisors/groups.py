"""Server groups: affinity and anti-affinity among the VMs placed with the same group name.

A group is the set of domain names placed in it (a Redis set; a name joins when its VM is
claimed). Where the members are is read as placement reads everything else: from the domains
the heartbeats report (what libvirt holds) and the claims not yet reported. A member removed
from its hypervisor drops out of both, so the group no longer counts it there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from orchestrator.domains.names import check_object_name
from orchestrator.hypervisors.claims import Claim
from orchestrator.placement import Group, GroupPolicy


class GroupHint(BaseModel):
    """``placement.group``: the server group the VM joins."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, AfterValidator(lambda value: check_object_name(value, "group"))] = Field(
        description="The group's name; VMs placed with the same name are its members."
    )
    policy: Literal["affinity", "anti-affinity"] = Field(
        description="affinity: every member on one hypervisor; anti-affinity: no two on one."
    )


def group_key(name: str) -> str:
    return f"orch:group:{name}"


class GroupBook:
    """The members of each group, in Redis."""

    def __init__(self, client: Any) -> None:
        self.redis = client

    def join(self, name: str, domain: str) -> None:
        self.redis.sadd(group_key(name), domain)

    def group(
        self, hint: GroupHint, beats: Iterable[Mapping[str, Any]], claims: Iterable[Claim]
    ) -> Group:
        """The group of ``hint`` with the hypervisors its members are on now."""
        members = set(self.redis.smembers(group_key(hint.name)))
        hosts = {claim.host for claim in claims if claim.domain in members}
        for beat in beats:
            domains = (beat.get("capacity") or {}).get("domains") or []
            if any(domain.get("name") in members for domain in domains):
                hosts.add(beat["name"])
        return Group(hint.name, GroupPolicy(hint.policy), frozenset(hosts))

"""Placement: which hypervisor runs a job or a new VM.

Pure decisions over data: a :class:`PlacementView` of :class:`HostView` records under a
:class:`PlacementPolicy` filters, weighs and ranks hypervisors for a
:class:`PlacementRequest`, and places ``count`` VMs at once without overcommitting. The
registry, the atomic claim in Redis and the jobs build on it."""

from orchestrator.placement.decision import (
    BatchPlacement,
    Candidate,
    Closest,
    Decision,
    FilterOutcome,
    NoHypervisorFits,
    explain,
)
from orchestrator.placement.filters import Filter, Lack, default_filters
from orchestrator.placement.hosts import Capacity, HostState, HostView, PoolCapacity, Resources
from orchestrator.placement.policy import PlacementPolicy
from orchestrator.placement.request import Group, GroupPolicy, PlacementRequest, Strategy
from orchestrator.placement.view import PlacementView, place, place_many

__all__ = [
    "BatchPlacement",
    "Candidate",
    "Capacity",
    "Closest",
    "Decision",
    "Filter",
    "FilterOutcome",
    "Group",
    "GroupPolicy",
    "HostState",
    "HostView",
    "Lack",
    "NoHypervisorFits",
    "PlacementPolicy",
    "PlacementRequest",
    "PlacementView",
    "PoolCapacity",
    "Resources",
    "Strategy",
    "default_filters",
    "explain",
    "place",
    "place_many",
]

"""The choice ``POST /v1/jobs`` makes today from the heartbeat registry, importable from
``orchestrator.placement`` as before."""

from __future__ import annotations

import pytest

from orchestrator.errors import InvalidInput
from orchestrator.placement import choose_hypervisor

BEATS = [
    {"name": "hv1", "alive": True, "capacity": {"free_memory_mib": 2048}},
    {"name": "hv2", "alive": True, "capacity": {"free_memory_mib": 8192}},
    {"name": "hv3", "alive": False, "capacity": {"free_memory_mib": 65536}},
]


def test_an_unnamed_job_goes_to_the_live_hypervisor_with_the_most_free_memory() -> None:
    assert choose_hypervisor(None, BEATS, "local") == "hv2"


def test_with_no_heartbeat_or_none_alive_the_default_hypervisor_is_used() -> None:
    assert choose_hypervisor(None, [], "local") == "local"
    assert choose_hypervisor(None, BEATS[2:], "local") == "local"


def test_a_named_hypervisor_must_be_known_unless_nothing_has_beaten() -> None:
    assert choose_hypervisor("hv3", BEATS, "local") == "hv3"
    assert choose_hypervisor("elsewhere", [], "local") == "elsewhere"
    with pytest.raises(InvalidInput, match="unknown hypervisor 'elsewhere'; known: hv1, hv2, hv3"):
        choose_hypervisor("elsewhere", BEATS, "local")

"""The registry in SQL: what heartbeats write, what settings declare, what an operator changes,
and the state placement sees from them."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session

from orchestrator.db import make_engine, make_sessionmaker
from orchestrator.errors import NotFound
from orchestrator.hypervisors import registry
from orchestrator.hypervisors.registry import AdminState, effective_state
from orchestrator.placement import HostState
from orchestrator.settings import DeclaredHypervisor


@pytest.fixture
def session(database_url: str) -> Iterator[Session]:
    with make_sessionmaker(make_engine(database_url))() as session:
        yield session


def beat(name: str, alive: bool = True, **extra: object) -> dict[str, object]:
    capacity = {"cpus": 8, "memory_mib": 16384, "domains": [{"name": "web"}]}
    return {"name": name, "alive": alive, "libvirt_uri": "test:///default",
            "capacity": capacity, "last_seen": time.time(), **extra}  # fmt: skip


def test_heartbeats_add_hypervisors_up_and_keep_their_last_capacity_once_down(
    session: Session,
) -> None:
    assert registry.record_beats(session, [beat("hv1"), beat("hv2")]) == 2
    assert registry.record_beats(session, [beat("hv1"), beat("hv2")]) == 0  # nothing new yet
    assert registry.record_beats(session, [beat("hv1", alive=False)]) == 1
    rows = {row.name: row for row in registry.entries(session)}
    assert (rows["hv1"].alive, rows["hv2"].alive) == (False, True)
    assert rows["hv1"].capacity == {"cpus": 8, "memory_mib": 16384}  # the domain list stays out
    assert rows["hv1"].libvirt_uri == "test:///default" and rows["hv1"].last_seen is not None
    assert effective_state(rows["hv1"].admin_state, rows["hv1"].alive) is HostState.DOWN


def test_declared_hypervisors_are_listed_down_until_they_beat_and_keep_operator_labels(
    session: Session,
) -> None:
    declared = DeclaredHypervisor(
        name="hv1", libvirt_uri="qemu+ssh://a/system", labels={"zone": "a"}
    )
    registry.declare(session, [declared])
    [row] = registry.entries(session)
    assert (row.declared, row.alive, row.labels) == (True, False, {"zone": "a"})
    registry.change(session, "hv1", None, {"zone": "a", "rack": "r2"}, seen_beating=False)
    registry.declare(session, [declared.model_copy(update={"labels": {"zone": "b"}})])
    registry.record_beats(session, [beat("hv1")])
    [row] = registry.entries(session)
    assert row.labels == {"zone": "b", "rack": "r2"}
    assert row.libvirt_uri == "test:///default"  # what the worker uses wins
    assert effective_state(row.admin_state, row.alive) is HostState.UP


def test_an_operator_state_outranks_liveness_and_unknown_names_are_not_found(
    session: Session,
) -> None:
    registry.record_beats(session, [beat("hv1")])
    registry.change(session, "hv1", AdminState.DRAINING, None, seen_beating=True)
    registry.record_beats(session, [beat("hv1", alive=False)])
    [row] = registry.entries(session)
    assert row.admin_state == "draining" and row.alive is False
    assert effective_state(row.admin_state, row.alive) is HostState.DRAINING
    with pytest.raises(NotFound):
        registry.change(session, "nosuch", AdminState.DISABLED, None, seen_beating=False)
    # Seen in a heartbeat before the recorder wrote it down: the change makes its row.
    registry.change(session, "hv2", AdminState.DISABLED, None, seen_beating=True)
    assert [r.name for r in registry.entries(session)] == ["hv1", "hv2"]

"""Job ids are UUIDv7 and sort in the order they were made."""

import uuid

from orchestrator.jobs.ids import new_job_id


def test_ids_made_in_a_burst_sort_in_creation_order() -> None:
    ids = [new_job_id() for _ in range(20_000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_ids_are_version_7_uuids() -> None:
    parsed = uuid.UUID(new_job_id())
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122

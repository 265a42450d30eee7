"""Bad storage parameters are refused at the edge with a 422 that names the field and rule."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.errors import InvalidInput
from orchestrator.kinds import KINDS, get_kind, parse_params
from orchestrator.kinds.storage import VolumeCreateParams

STORAGE_KINDS = [
    "volume.create",
    "volume.clone",
    "volume.resize",
    "volume.delete",
    "volume.upload",
    "volume.create_many",
    "pool.delete",
    "volume.list",
    "pool.list",
    "pool.ensure",
]


def errors_of(kind: str, raw: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(InvalidInput) as caught:
        parse_params(get_kind(kind), raw)
    assert caught.value.status == 422
    return {item["field"]: item["message"] for item in caught.value.extra["errors"]}


def test_every_storage_kind_is_registered_and_safe_to_rerun() -> None:
    for name in STORAGE_KINDS:
        assert KINDS[name].safe_to_rerun, name


def test_create_reads_sizes_and_defaults() -> None:
    params = parse_params(get_kind("volume.create"), {"pool": "p", "name": "x", "capacity": "6G"})
    assert isinstance(params, VolumeCreateParams)
    assert (params.capacity, params.format, params.allocation) == (6 * 1024**3, "qcow2", "sparse")


@pytest.mark.parametrize(
    ("raw", "field", "rule"),
    [
        ({"name": "a/b"}, "params.name", "'/'"),
        ({"name": ".."}, "params.name", "start with '.'"),
        ({"name": ".x"}, "params.name", "start with '.'"),
        ({"name": "a\x00"}, "params.name", "NUL"),
        ({"name": "x" * 256}, "params.name", "255 bytes"),
        ({"pool": "a/b"}, "params.pool", "'/'"),
        ({"capacity": "0"}, "params.capacity", "positive"),
        ({"capacity": "-5G"}, "params.capacity", "positive"),
        ({"capacity": "lots"}, "params.capacity", "cannot read"),
        ({"capacity": "1.3K"}, "params.capacity", "multiple of 512"),
        ({"capacity": "10GiB"}, "params.capacity", "unknown size unit 'GiB'"),
        ({"format": "vmdk"}, "params.format", "'qcow2' or 'raw'"),
        ({"allocation": "thick"}, "params.allocation", "'sparse' or 'full'"),
        ({"mode": "999"}, "params.mode", "pattern"),
        ({"owner": -1}, "params.owner", "greater than or equal"),
        ({"colour": "red"}, "params.colour", "Extra inputs"),
        ({"backing": "base"}, "params.backing", "pool/name"),
        ({"format": "raw", "backing": "p/base"}, "params.backing", "raw volume cannot"),
        ({"allocation": "full", "backing": "p/base"}, "params.backing", "allocation 'full'"),
    ],
)
def test_bad_create_params_name_the_field(raw: dict[str, Any], field: str, rule: str) -> None:
    base = {"pool": "p", "name": "x", "capacity": "1G"}
    errors = errors_of("volume.create", {**base, **raw})
    assert field in errors, errors
    assert rule in errors[field]


def test_capacity_is_required_without_backing() -> None:
    errors = errors_of("volume.create", {"pool": "p", "name": "x"})
    assert errors == {"params.capacity": "Value error, required unless backing is given"}


@pytest.mark.parametrize(
    ("raw", "field", "rule"),
    [
        ({"pool": "p"}, "params.name", "required unless path is given"),
        ({"name": "x"}, "params.pool", "required unless path is given"),
        ({"path": "/d/x", "pool": "p"}, "params.pool", "not both"),
        ({"path": "d/x"}, "params.path", "absolute"),
        ({"path": "/d/../x"}, "params.path", "'..'"),
        ({"path": "/d/./x"}, "params.path", "normalized"),
        ({"path": "/d/x\x00"}, "params.path", "NUL"),
    ],
)
def test_a_volume_is_named_by_pool_and_name_or_by_path(
    raw: dict[str, Any], field: str, rule: str
) -> None:
    errors = errors_of("volume.delete", raw)
    assert rule in errors[field]


def test_an_invalid_path_reports_only_the_path() -> None:
    assert list(errors_of("volume.delete", {"path": "x"})) == ["params.path"]


def test_upload_needs_a_sha256_and_an_absolute_source() -> None:
    errors = errors_of(
        "volume.upload", {"pool": "p", "name": "x", "source_path": "img", "sha256": "zz"}
    )
    assert set(errors) == {"params.source_path", "params.sha256"}
    good = parse_params(
        get_kind("volume.upload"),
        {"pool": "p", "name": "x", "source_path": "/srv/img", "sha256": "AB" * 32},
    )
    assert good.sha256 == "ab" * 32  # type: ignore[attr-defined]


def test_resize_and_pool_kinds_validate_too() -> None:
    assert "params.capacity" in errors_of("volume.resize", {"pool": "p", "name": "x"})
    assert "params.path" in errors_of("pool.ensure", {"name": "p", "path": "rel"})
    assert "params.pool" in errors_of("volume.list", {"pool": ".hidden"})


def test_the_schema_documents_size_strings() -> None:
    schema = VolumeCreateParams.model_json_schema()
    capacity = schema["properties"]["capacity"]["anyOf"][0]
    assert "G = GiB" in capacity["description"]


def test_upload_takes_one_source_a_path_or_the_api() -> None:
    neither = errors_of("volume.upload", {"pool": "p", "name": "x", "sha256": "ab" * 32})
    assert "required: a file on the hypervisor" in neither["params.source_path"]
    both = errors_of(
        "volume.upload",
        {
            "pool": "p",
            "name": "x",
            "sha256": "ab" * 32,
            "source_path": "/srv/img",
            "content_from_api": True,
        },
    )
    assert "not both" in both["params.source_path"]

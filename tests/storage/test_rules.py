"""The pure storage rules: size strings, names, paths, spec comparison, path-to-pool mapping."""

from __future__ import annotations

import re

import pytest

from orchestrator.storage.locators import parse_volume_locator, volume_in_pool_dirs
from orchestrator.storage.names import check_host_path, check_volume_name, partial_name
from orchestrator.storage.sizes import format_size, parse_size
from orchestrator.storage.spec import VolumeSpec, VolumeState, spec_differences

GiB = 1024**3


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("6G", 6 * GiB),
        ("512M", 512 * 1024**2),
        ("1.5T", 1536 * GiB),
        ("1073741824", GiB),
        (4096, 4096),
        ("64k", 65536),
        ("2g", 2 * GiB),
        ("512b", 512),
        ("2P", 2 * 1024**5),
        ("1E", 1024**6),
        ("1.5k", 1536),
        ("5.G", 5 * GiB),
        ("+2G", 2 * GiB),
        (" 2G", 2 * GiB),
        ("0x200", 512),
        ("0x1e00", 7680),
    ],
)
def test_sizes_read_like_qemu_img(text: str | int, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("0", "must be positive"),
        (0, "must be positive"),
        ("-1G", "must be positive"),
        ("-0", "must be positive"),
        (-4096, "must be positive"),
        ("abc", "cannot read 'abc' as a size"),
        ("", "cannot read"),
        ("5X", "unknown size unit 'X'"),
        ("1GB", "unknown size unit 'GB'"),
        ("10GiB", "unknown size unit 'GiB'"),
        ("1.5kb", "unknown size unit 'kb'"),
        ("2 g", "cannot read '2 g' as a size"),
        ("2G ", "cannot read"),
        ("1e3", "cannot read"),
        ("1.5e3", "no exponent"),
        ("1.5", "a fraction needs a unit"),
        ("2.5B", "a fraction needs a unit"),
        (".5G", "cannot read"),
        ("0x10k", "a hexadecimal size takes no unit"),
        ("0x1.8", "cannot read"),
        ("0.99999999999999999999k", "too many digits"),
        ("1.3K", "multiple of 512 bytes, got 1.3K = 1331 bytes"),
        ("010", "multiple of 512 bytes, got 010 = 10 bytes"),  # decimal, never octal
        (1000, "multiple of 512"),
        ("2E", "at most 1 EiB"),
        ("2048P", "at most 1 EiB"),
        ("8E", "at most 1 EiB"),
        ("18446744073709551616", "at most 1 EiB"),
        (True, "number of bytes or a size string"),
        (1.5, "number of bytes or a size string"),
    ],
)
def test_bad_sizes_name_the_rule(value: object, rule: str) -> None:
    with pytest.raises(ValueError, match=re.escape(rule)):
        parse_size(value)


def test_format_size_is_short_and_binary() -> None:
    assert format_size(6 * GiB) == "6 GiB"
    assert format_size(1536 * GiB) == "1.5 TiB"
    assert format_size(512) == "512 B"


@pytest.mark.parametrize("name", ["disk.qcow2", "vm-01_root", "x", "é" * 127, "a b", "x" * 255])
def test_good_volume_names(name: str) -> None:
    assert check_volume_name(name) == name


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("a/b", "'/'"),
        ("..", "start with '.'"),
        (".hidden", "start with '.'"),
        ("a\x00b", "NUL"),
        ("a\nb", "control characters"),
        ("x" * 256, "255 bytes"),
        ("é" * 128, "255 bytes"),
        ("", "empty"),
    ],
)
def test_bad_volume_names(name: str, rule: str) -> None:
    with pytest.raises(ValueError, match=rule):
        check_volume_name(name)


@pytest.mark.parametrize(
    ("path", "rule"),
    [
        ("relative/x.qcow2", "absolute"),
        ("/a/../b", "'..'"),
        ("/a/./b", "normalized"),
        ("/a//b", "normalized"),
        ("//a/b", "normalized"),
        ("/a/", "normalized"),
        ("/a\x00", "NUL"),
    ],
)
def test_bad_host_paths(path: str, rule: str) -> None:
    with pytest.raises(ValueError, match=rule):
        check_host_path(path)


def test_partial_names_are_private_and_per_job() -> None:
    first, second = partial_name("job-1"), partial_name("job-2")
    assert first.startswith(".") and first != second
    assert partial_name("job-1") == first
    with pytest.raises(ValueError):
        check_volume_name(first)


def test_locators_take_pool_slash_name_or_a_path() -> None:
    assert str(parse_volume_locator("default/base.qcow2")) == "default/base.qcow2"
    assert parse_volume_locator("/var/lib/libvirt/images/b").path == "/var/lib/libvirt/images/b"
    for bad, rule in [("base", "pool/name"), ("p/.x", "name part"), ("p/a/b", "name part")]:
        with pytest.raises(ValueError, match=rule):
            parse_volume_locator(bad)


def test_paths_map_to_the_pool_whose_directory_holds_them() -> None:
    dirs = {"default": "/var/lib/libvirt/images", "fast": "/srv/fast/"}
    assert volume_in_pool_dirs("/var/lib/libvirt/images/x.qcow2", dirs) == ("default", "x.qcow2")
    assert volume_in_pool_dirs("/srv/fast/y", dirs) == ("fast", "y")
    assert volume_in_pool_dirs("/var/lib/libvirt/images/sub/x", dirs) is None
    assert volume_in_pool_dirs("/etc/shadow", dirs) is None


def test_spec_differences_name_every_field() -> None:
    state = VolumeState(format="qcow2", capacity=GiB, allocation=200_000, backing_path=None)
    assert spec_differences(VolumeSpec(format="qcow2", capacity=GiB), state) == []
    wanted = VolumeSpec(
        format="raw", capacity=2 * GiB, backing_path="/p/base", full_allocation=True
    )
    fields = [diff["field"] for diff in spec_differences(wanted, state)]
    assert fields == ["format", "capacity", "backing", "allocation"]


def test_mode_compares_as_octal() -> None:
    state = VolumeState("raw", GiB, GiB, None, owner=0, group=0, mode="0640")
    assert spec_differences(VolumeSpec(mode="640"), state) == []
    assert spec_differences(VolumeSpec(mode="0600", owner=107), state)[0]["field"] == "owner"

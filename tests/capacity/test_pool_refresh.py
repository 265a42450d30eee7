"""A file copied by hand into a running pool's directory is found by the next job that names it,
by path or as ``pool/name``, as virt-install finds it (libvirt itself sees it only once the pool
is refreshed)."""

from __future__ import annotations

import shutil
from pathlib import Path

from orchestrator.local.bootsector import MARKER, write_base_image
from tests.capacity.conftest import QEMU_HV, PoolDir, run_ok, wait_for_marker
from tests.support.services import RunningStack


def copy_in_by_hand(place: PoolDir, name: str) -> Path:
    """A boot-sector image written elsewhere and copied into the pool's directory."""
    source = write_base_image(place.root / "outside.img")
    target = Path(shutil.copy(source, place.directory / name))
    target.chmod(0o644)
    return target


def unseen_by_libvirt(place: PoolDir, name: str) -> bool:
    pool = place.conn.storagePoolLookupByName(place.name)
    return name not in pool.listVolumes()


def test_a_disk_copied_into_the_pool_by_hand_is_imported_by_path_and_boots(
    qemu_stack: RunningStack, pool_dir: PoolDir
) -> None:
    run_ok(qemu_stack, QEMU_HV, "pool.ensure", name=pool_dir.name, path=str(pool_dir.directory))
    copied = copy_in_by_hand(pool_dir, "copied.img")
    assert unseen_by_libvirt(pool_dir, "copied.img")
    name = pool_dir.domain_name("import")

    defined = run_ok(
        qemu_stack,
        QEMU_HV,
        "domain.define",
        name=name,
        memory_mib=64,
        vcpus=1,
        boot_source="import",
        disks=[{"source": {"type": "path", "path": str(copied)}}],
        networks=[],
        graphics={"type": "vnc", "listen": "127.0.0.1"},
        serials=[{"type": "file", "path": str(pool_dir.serial_log(name))}],
    )
    assert defined["state"] == "running"
    assert wait_for_marker(pool_dir.serial_log(name)).startswith(MARKER)
    assert not unseen_by_libvirt(pool_dir, "copied.img")


def test_a_base_image_copied_into_the_pool_by_hand_backs_a_new_volume_named_by_pool_and_name(
    qemu_stack: RunningStack, pool_dir: PoolDir
) -> None:
    run_ok(qemu_stack, QEMU_HV, "pool.ensure", name=pool_dir.name, path=str(pool_dir.directory))
    copy_in_by_hand(pool_dir, "golden.img")
    assert unseen_by_libvirt(pool_dir, "golden.img")

    made = run_ok(
        qemu_stack,
        QEMU_HV,
        "volume.create",
        pool=pool_dir.name,
        name="vm1.qcow2",
        capacity="1G",
        backing=f"{pool_dir.name}/golden.img",
    )
    assert made["backing"]["path"] == str(pool_dir.directory / "golden.img")
    assert pool_dir.volumes() == {"golden.img", "vm1.qcow2"}


def test_a_name_with_no_file_behind_it_is_still_refused_as_missing(
    qemu_stack: RunningStack, pool_dir: PoolDir
) -> None:
    run_ok(qemu_stack, QEMU_HV, "pool.ensure", name=pool_dir.name, path=str(pool_dir.directory))
    missing = pool_dir.directory / "never-copied.img"
    done = qemu_stack.run(
        "domain.define",
        QEMU_HV,
        name=pool_dir.domain_name("missing"),
        memory_mib=64,
        vcpus=1,
        boot_source="import",
        disks=[{"source": {"type": "path", "path": str(missing)}}],
        networks=[],
    )
    assert done["state"] == "failed"
    assert done["error"]["status"] == 422
    assert f"{missing} does not exist (give size_gib to create it)" in done["error"]["detail"]
    assert pool_dir.volumes() == set()

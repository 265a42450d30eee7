"""``pool.ensure`` confined to the pool roots, through the API and a worker on the real libvirtd:
a system directory is refused by the API itself, a directory outside the roots (or a symlink
leading out of them) by the worker; either way no pool is defined and no directory made."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest

from tests.confinement.conftest import (
    HV,
    Area,
    cron_d,
    fields,
    job_count,
    pool_names,
    pools_at,
    post_job,
    refused,
    remove_pool,
)
from tests.support.services import RunningStack

pytestmark = pytest.mark.libvirtd


def new_name() -> str:
    return f"orch-cf-{uuid.uuid4().hex[:8]}"


@pytest.mark.parametrize(
    "path", ["/etc/cron.d", "/root/.ssh", "/", "/var/lib/libvirt/qemu/x", "/usr/lib"]
)
def test_a_pool_in_a_system_directory_is_refused_by_the_api_with_403_and_nothing_stored(
    stack: RunningStack, conn: libvirt.virConnect, path: str
) -> None:
    name, cron_before, jobs_before = new_name(), cron_d(), job_count(stack)

    response = post_job(stack, "pool.ensure", name=name, path=path)

    assert response.status_code == 403
    assert response.headers["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert fields(problem) == ["params.path"]
    assert problem["detail"].startswith(f"params.path {path} is ")
    assert problem["detail"].endswith("a system directory, never allowed")
    assert problem["rule"] == "system-directory"
    assert job_count(stack) == jobs_before
    assert name not in pool_names()
    assert pools_at(conn, path) == []
    assert cron_d() == cron_before


def test_a_pool_outside_the_pool_roots_is_refused_by_the_worker_naming_the_setting(
    stack: RunningStack, conn: libvirt.virConnect, area: Area
) -> None:
    name, path = new_name(), area.outside / "pool"

    problem = refused(stack, "pool.ensure", 403, name=name, path=str(path))

    roots = f"{area.pool_root}, {stack.settings.var_dir.resolve()}/pools"
    assert problem["detail"] == (
        f"params.path {path} is outside the pool roots (ORCH_POOL_ROOTS: {roots})"
    )
    assert fields(problem) == ["params.path"]
    assert (problem["rule"], problem["setting"]) == ("pool-roots", "ORCH_POOL_ROOTS")
    assert not path.exists()
    assert name not in pool_names()
    assert pools_at(conn, path) == []


@pytest.fixture
def link(area: Area) -> Iterator[Path]:
    """A name inside the pool root, for a symlink the test points somewhere else."""
    path = area.pool_root / f"link-{uuid.uuid4().hex[:8]}"
    yield path
    path.unlink(missing_ok=True)


def test_a_symlink_in_the_pool_root_to_etc_cron_d_is_refused_and_cron_d_untouched(
    stack: RunningStack, conn: libvirt.virConnect, link: Path
) -> None:
    link.symlink_to("/etc/cron.d")
    name, cron_before = new_name(), cron_d()

    problem = refused(stack, "pool.ensure", 403, name=name, path=str(link))

    assert problem["detail"] == (
        f"params.path {link} (resolving to /etc/cron.d) is inside /etc, a system directory, "
        "never allowed"
    )
    assert name not in pool_names()
    assert pools_at(conn, link) == pools_at(conn, "/etc/cron.d") == []
    assert cron_d() == cron_before


def test_a_symlink_in_the_pool_root_to_a_directory_outside_is_refused(
    stack: RunningStack, conn: libvirt.virConnect, area: Area, link: Path
) -> None:
    target = area.outside / f"dir-{uuid.uuid4().hex[:8]}"
    target.mkdir()
    link.symlink_to(target)
    name = new_name()

    problem = refused(stack, "pool.ensure", 403, name=name, path=str(link))

    assert problem["detail"].startswith(
        f"params.path {link} (resolving to {target}) is outside the pool roots (ORCH_POOL_ROOTS: "
    )
    assert name not in pool_names()
    assert list(target.iterdir()) == []


def test_a_pool_at_a_root_itself_or_below_it_is_made(
    stack: RunningStack, conn: libvirt.virConnect, area: Area
) -> None:
    for path in (area.pool_root, area.pool_root / "nested" / "deeper"):
        name = new_name()
        try:
            done = stack.run("pool.ensure", HV, name=name, path=str(path), autostart=False)
            assert done["state"] == "succeeded", done["error"]
            assert pools_at(conn, path) == [name]
            assert path.is_dir()
        finally:
            remove_pool(conn, name)

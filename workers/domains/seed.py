"""The cloud-init NoCloud seed ISO: built on the hypervisor with genisoimage, in a pool directory.

The files come from :func:`orchestrator.domains.cloudinit.nocloud_files`; they are written to a
private temporary directory and never logged (user-data may hold password hashes). genisoimage
gets them as argv items, never through a shell.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile

import libvirt

from orchestrator.domains.cloudinit import SEED_VOLUME_LABEL, nocloud_files
from orchestrator.domains.dryrun import seed_pool_name
from orchestrator.domains.spec import DomainSpec
from orchestrator.errors import InvalidInput, JobFailed
from workers.context import JobContext
from workers.storage.managed import HostConfinement
from workers.storage.pools import find_pool, local_pool_dir, refresh_pool, require_active


def seed_file_name(domain: str) -> str:
    return f"{domain}-cidata.iso"


def seed_directory(
    confine: HostConfinement, spec: DomainSpec
) -> tuple[libvirt.virStoragePool, str]:
    """The pool and local directory where the seed goes; InvalidInput when there is none,
    Forbidden when the pool is not managed."""
    name = seed_pool_name(spec)
    conn = confine.conn
    pool = find_pool(conn, name)
    confine.require_target(pool, seed_file_name(spec.name), "params.cloud_init")
    require_active(pool)
    directory = local_pool_dir(conn, pool)
    if directory is None:
        message = f"storage pool {name!r} is not a local directory; the seed ISO needs one"
        raise InvalidInput(message, errors=[{"field": "params.cloud_init", "message": message}])
    return pool, directory


def build_seed(
    ctx: JobContext, spec: DomainSpec, pool: libvirt.virStoragePool, directory: str
) -> str:
    """Write ``<directory>/<name>-cidata.iso``; registered for removal if the define fails."""
    path = os.path.join(directory, seed_file_name(spec.name))
    existed = os.path.exists(path)
    with tempfile.TemporaryDirectory(prefix="seed-") as workdir:
        names = []
        for name, content in nocloud_files(spec).items():
            with open(os.path.join(workdir, name), "w", encoding="utf-8") as handle:
                handle.write(content)
            names.append(name)
        partial = f"{path}.{ctx.job_id}.partial"
        argv = ["genisoimage", "-quiet", "-output", partial, "-volid", SEED_VOLUME_LABEL]
        argv += ["-joliet", "-rock", *names]
        done = subprocess.run(argv, cwd=workdir, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            _remove(partial)
            raise JobFailed(f"genisoimage could not build the seed ISO: {done.stderr.strip()}")
    os.chmod(partial, 0o644)
    os.replace(partial, path)
    if not existed:
        ctx.created(f"cloud-init seed {path}", lambda: _remove_and_refresh(path, pool))
    refresh_pool(pool)
    ctx.event(f"built the cloud-init seed {path} ({', '.join(sorted(names))})")
    return path


def _remove_and_refresh(path: str, pool: libvirt.virStoragePool) -> None:
    _remove(path)
    refresh_pool(pool)


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)

"""Receive a job's file content sent through the API into a private file on the worker."""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from orchestrator.errors import InvalidInput, JobFailed, OrchestratorError
from orchestrator.jobs.content_pipe import ContentStopped, binary_client, receive_content
from orchestrator.storage.sizes import format_size
from workers.context import JobContext

# Free space an upload never takes from the file system holding the worker's var dir (its
# logs, and on one machine the local Redis and SQLite): 5% of it, at most this much.
MAX_SPOOL_RESERVE_BYTES = 256 * 1024**2


class SpoolFull(OrchestratorError):
    """Raised when the worker's upload spool has too little free space for the content."""

    status = 507
    title = "Insufficient storage"


@contextmanager
def spooled_content(
    ctx: JobContext, sha256: str, declared_size: int | None = None
) -> Iterator[str]:
    """The path of a file holding the content, verified against ``sha256``; removed after.

    The file lies under the worker's var dir (``uploads/``, mode 0700), so the import that
    follows reads a local, complete, checked file however slowly the client sent it. Content
    whose ``declared_size`` does not fit is refused before a byte is read; content sent without
    one is refused at the first chunk that would not fit (SpoolFull either way).
    """
    directory = ctx.settings.var_dir.resolve() / "uploads"
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.chmod(0o700)  # also when found looser: spooled images are nobody else's to read
    _remove_leftovers(directory, ctx.job_id)
    if declared_size is not None:
        require_spool_space(directory, declared_size)
    path = directory / f"{ctx.job_id}.{ctx.attempt}"
    client = binary_client(ctx.settings.resolved_redis_url)
    digest = hashlib.sha256()
    size = 0
    try:
        with open(path, "wb") as out:
            for chunk in receive_content(client, ctx.job_id):
                # A statvfs per chunk of a MiB: next to nothing beside writing the chunk.
                require_spool_space(directory, len(chunk), received=size)
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
        if digest.hexdigest() != sha256:
            message = (
                f"the content sent ({size} bytes) has sha256 {digest.hexdigest()}, not the "
                f"expected {sha256}"
            )
            raise InvalidInput(message, errors=[{"field": "params.sha256", "message": message}])
        ctx.event(f"received {size} bytes through the API, sha256 verified")
        yield str(path)
    except ContentStopped as exc:
        raise JobFailed(str(exc)) from None
    finally:
        path.unlink(missing_ok=True)
        client.close()


def require_spool_space(directory: Path, needed: int, *, received: int = 0) -> None:
    """SpoolFull unless ``needed`` more bytes fit in ``directory`` and leave its reserve free."""
    stats = os.statvfs(directory)
    free = stats.f_bavail * stats.f_frsize
    reserve = min(MAX_SPOOL_RESERVE_BYTES, stats.f_blocks * stats.f_frsize // 20)
    if needed + reserve <= free:
        return
    so_far = f" after the first {format_size(received)}" if received else ""
    raise SpoolFull(
        f"the worker's upload spool {directory} has {format_size(free)} free and keeps "
        f"{format_size(reserve)} of it in reserve; the content needs {format_size(needed)} "
        f"more{so_far}: free space on the hypervisor's var dir (setting var_dir)",
        needed_bytes=needed,
        free_bytes=free,
        reserve_bytes=reserve,
        received_bytes=received,
    )


LEFTOVER_AGE_SECONDS = 24 * 3600


def _remove_leftovers(directory: Path, job_id: str) -> None:
    """Spool files a killed worker left: this job's earlier attempts, and any a day old."""
    cutoff = time.time() - LEFTOVER_AGE_SECONDS
    for leftover in directory.iterdir():
        with contextlib.suppress(OSError):
            if leftover.name.startswith(f"{job_id}.") or leftover.stat().st_mtime < cutoff:
                leftover.unlink()

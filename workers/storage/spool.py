"""Receive a job's file content sent through the API into a private file on the worker."""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from orchestrator.errors import InvalidInput, JobFailed
from orchestrator.jobs.content_pipe import ContentStopped, binary_client, receive_content
from workers.context import JobContext


@contextmanager
def spooled_content(ctx: JobContext, sha256: str) -> Iterator[str]:
    """The path of a file holding the content, verified against ``sha256``; removed after.

    The file lies under the worker's var dir (``uploads/``, mode 0700), so the import that
    follows reads a local, complete, checked file however slowly the client sent it.
    """
    directory = ctx.settings.var_dir.resolve() / "uploads"
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.chmod(0o700)  # also when found looser: spooled images are nobody else's to read
    _remove_leftovers(directory, ctx.job_id)
    path = directory / f"{ctx.job_id}.{ctx.attempt}"
    client = binary_client(ctx.settings.resolved_redis_url)
    digest = hashlib.sha256()
    size = 0
    try:
        with open(path, "wb") as out:
            for chunk in receive_content(client, ctx.job_id):
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


LEFTOVER_AGE_SECONDS = 24 * 3600


def _remove_leftovers(directory: Path, job_id: str) -> None:
    """Spool files a killed worker left: this job's earlier attempts, and any a day old."""
    cutoff = time.time() - LEFTOVER_AGE_SECONDS
    for leftover in directory.iterdir():
        with contextlib.suppress(OSError):
            if leftover.name.startswith(f"{job_id}.") or leftover.stat().st_mtime < cutoff:
                leftover.unlink()

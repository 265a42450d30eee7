"""What a job handler gets: its identity, a way to report events, the hypervisor, the worker's
shared resources, and undo."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from orchestrator.jobs.livestate import LiveState
from orchestrator.settings import Settings
from workers.domains.host import HostFactsCache
from workers.fleet.connections import ConnectionPool
from workers.redis_retry import TRANSIENT, retrying

if TYPE_CHECKING:
    import libvirt


@dataclass
class WorkerResources:
    """What a worker process keeps warm between the jobs it runs."""

    # SSH connections to fleet hosts, reused by the next fleet job on the same host.
    ssh_pool: ConnectionPool = field(default_factory=ConnectionPool)
    # What each libvirt connection's host offers guests, probed once per connection.
    host_facts: HostFactsCache = field(default_factory=HostFactsCache)


@dataclass
class JobContext:
    """One attempt of one job, as seen by the handler running it."""

    job_id: str
    attempt: int
    kind: str
    settings: Settings
    live: LiveState
    connect: Callable[[], libvirt.virConnect]
    resources: WorkerResources = field(default_factory=WorkerResources)
    _undo: list[tuple[str, Callable[[], None]]] = field(default_factory=list)
    # Set once the attempt was ended from outside its thread (its hard deadline): whatever the
    # thread reports afterwards is dropped, so it cannot touch the job's record again.
    fenced: bool = False

    def fence(self) -> None:
        self.fenced = True

    @property
    def hypervisor(self) -> str:
        return self.settings.hypervisor

    @property
    def libvirt(self) -> libvirt.virConnect:
        """This worker's libvirt connection, opened on first use (after Celery forked)."""
        return self.connect()

    def event(
        self,
        message: str,
        *,
        level: str = "info",
        host: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        """Report progress; it reaches the API and SQL in order with a sequence number. While
        Redis is unreachable the report is retried (the handler waits), never dropped."""
        if self.fenced:
            return
        retrying(
            lambda: self.live.event(
                self.job_id, self.attempt, message, level=level, host=host, data=data
            ),
            f"job {self.job_id} event",
            self.settings.outcome_retry_seconds,
        )

    def created(self, description: str, undo: Callable[[], None]) -> None:
        """Remember something this attempt created, so a failure later removes it again."""
        self._undo.append((description, undo))

    def keep_created(self) -> None:
        """The job succeeded: what it created stays."""
        self._undo.clear()

    def undo_created(self) -> None:
        """Remove, newest first, everything this attempt created; report each removal."""
        while self._undo:
            description, undo = self._undo.pop()
            try:
                undo()
                self.event(f"removed {description} after the failure", level="warning")
            except Exception as exc:  # keep undoing the rest; say what could not be removed
                self.event(f"could not remove {description}: {exc}", level="error")

    def cancel_requested(self) -> bool:
        """Whether someone asked for this job to stop; long handlers check between steps.
        While Redis does not answer nobody can ask, so the job goes on."""
        try:
            return bool(self.live.redis.exists(self.live.cancel_flag_key(self.job_id)))
        except TRANSIENT:
            return False

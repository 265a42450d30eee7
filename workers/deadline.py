"""The deadline of a job attempt, enforced whatever the pool.

Celery's thread pool ignores its time limits, and a thread cannot be killed. So at the soft
limit the attempt is asked to stop (its cancel flag, which handlers check between steps) and
will end failed whatever it returns; at the hard limit, if its thread still has not returned
(a libvirt call or an SSH read that hangs), the job is failed from here and the thread is
fenced: nothing it writes later reaches the job (see ``JobContext.fenced``).

Both limits lie below the broker's visibility timeout (the settings check it): the job has
ended before the broker would hand its message to another worker.
"""

from __future__ import annotations

import logging
import threading

from orchestrator.jobs.lifecycle import JobState
from workers.context import JobContext
from workers.redis_retry import retrying

log = logging.getLogger(__name__)

TIMEOUT_PROBLEM = "urn:orchestrator:problem:timeout"


class Deadline:
    """Timers for one attempt: ``passed`` once the soft limit is reached."""

    def __init__(self, ctx: JobContext, soft_seconds: float, hard_seconds: float) -> None:
        self.ctx = ctx
        self.soft_seconds = soft_seconds
        self.hard_seconds = hard_seconds
        self.passed = False
        self._done = threading.Lock()  # held by whoever ends the attempt first
        self._timers = [
            threading.Timer(soft_seconds, self._soft),
            threading.Timer(hard_seconds, self._hard),
        ]
        for timer in self._timers:
            timer.daemon = True

    def __enter__(self) -> Deadline:
        for timer in self._timers:
            timer.start()
        return self

    def __exit__(self, *_: object) -> None:
        for timer in self._timers:
            timer.cancel()

    def claim_ending(self) -> bool:
        """Whether the caller may end the attempt (False once the hard limit has)."""
        return self._done.acquire(blocking=False)

    @property
    def problem(self) -> dict[str, object]:
        return {"type": TIMEOUT_PROBLEM, "status": 504, "title": "Deadline exceeded"}

    @property
    def detail(self) -> str:
        return f"deadline of {self.soft_seconds:g}s exceeded (setting task_soft_time_limit)"

    def _soft(self) -> None:
        self.passed = True
        ctx = self.ctx
        try:
            ctx.live.request_cancel(ctx.job_id)
            ctx.event(f"{self.detail}: stopping", level="error")
        except Exception:
            log.exception("job %s: could not ask it to stop at its deadline", ctx.job_id)

    def _hard(self) -> None:
        if not self.claim_ending():
            return
        ctx = self.ctx
        ctx.fence()
        detail = (
            f"{self.detail}; the attempt did not stop within {self.hard_seconds:g}s "
            "(setting task_time_limit) and was abandoned"
        )
        try:
            retrying(
                lambda: ctx.live.finish(
                    ctx.job_id,
                    ctx.attempt,
                    JobState.FAILED,
                    f"failed: {detail}",
                    error={**self.problem, "detail": detail},
                ),
                f"job {ctx.job_id} outcome at its hard deadline",
                ctx.settings.outcome_retry_seconds,
            )
        except Exception:
            log.exception("job %s: could not fail it at its hard deadline", ctx.job_id)

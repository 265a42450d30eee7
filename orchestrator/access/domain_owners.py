"""Whose a domain is: the token whose job made it. With tokens on, a job that makes or acts on a
domain (starts, stops, destroys, undefines, defines or provisions it again) is refused unless
the domain was made by a job of the same token, or the token holds ``admin``. Without that, any
``jobs:submit`` token could destroy another team's VMs, or adopt one by provisioning its name.

The record is the jobs table itself (each such job keeps its domain and hypervisor): the latest
job that made the domain and did not fail, or that undefined it, says whose it is, or that the
name is free again. A job SQL has as unfinished is taken as Redis has it now (SQL trails the
live state). A domain no job made (defined by hand on the hypervisor) is left to ``admin``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.access.scopes import ADMIN
from orchestrator.errors import Forbidden
from orchestrator.jobs.lifecycle import JobState
from orchestrator.models import Job

MAKERS = frozenset({"domain.define", "vm.provision"})
UNDEFINE = "domain.undefine"
# The kinds whose ``name`` parameter is a domain they make or change. domain.info and
# domain.list only read, as GET /v1/domains does.
ACTS_ON_DOMAIN = MAKERS | frozenset(
    {
        "domain.destroy",
        "domain.reboot",
        "domain.resume",
        "domain.shutdown",
        "domain.start",
        "domain.suspend",
        UNDEFINE,
    }
)
_DID_NOTHING = frozenset({JobState.FAILED.value, JobState.CANCELLED.value, JobState.LOST.value})
# More than enough to get past the failed attempts at a name to the job that settled it.
_LOOK_BACK = 50


def domain_of(kind: str, params: dict[str, Any]) -> str | None:
    """The domain a job of ``kind`` makes or acts on; None for other kinds (and for a count
    request's parent, whose name is a pattern: its children each name theirs)."""
    name = params.get("name")
    if kind not in ACTS_ON_DOMAIN or not isinstance(name, str) or params.get("count") is not None:
        return None
    return name


LiveState = Callable[[str], JobState | None]  # a job's state in Redis, None if unknown there


def check_domain_owner(
    session: Session,
    live_state: LiveState,
    kind: str,
    hypervisor: str,
    domain: str,
    token: str,
) -> None:
    """Forbidden unless ``token`` may run a ``kind`` job on ``domain`` of ``hypervisor``."""
    owner = _owner(session, live_state, hypervisor, domain)
    if owner == token or (owner is _FREE and kind in MAKERS):
        return
    made = "was not made by" if owner is not _FREE else "was made by no job of"
    raise Forbidden.of(
        "params.name",
        f"domain {domain!r} on {hypervisor} {made} token {token!r}; acting on another token's "
        f"domain, or on one made outside this service, needs scope {ADMIN!r}",
        rule="domain-owner",
        required_scopes=[ADMIN],
    )


class _Free:
    """No job holds the name: never made through this service, or undefined since."""


_FREE = _Free()


def _owner(session: Session, live_state: LiveState, hypervisor: str, domain: str) -> str | _Free:
    rows = session.execute(
        select(Job.id, Job.kind, Job.state, Job.submitter)
        .where(
            Job.hypervisor == hypervisor,
            Job.domain == domain,
            Job.kind.in_(MAKERS | {UNDEFINE}),
        )
        .order_by(Job.created_at.desc(), Job.id.desc())
        .limit(_LOOK_BACK)
    )
    for job_id, kind, recorded, submitter in rows:
        state = recorded
        if not JobState(recorded).is_terminal:
            try:
                live = live_state(job_id)
            except redis.RedisError:  # Redis away: SQL's state, a little behind, decides
                live = None
            state = live.value if live is not None else recorded
        if kind == UNDEFINE:
            # Only a finished undefine frees the name; one still running leaves it as it was.
            if state == JobState.SUCCEEDED.value:
                return _FREE
            continue
        if state not in _DID_NOTHING:
            return str(submitter)
    return _FREE

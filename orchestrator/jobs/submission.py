"""Accepting a job: validate it, place it (claiming its room when it makes a VM), store it with
its outbox row, and publish it."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from typing import Annotated, Any, Literal

import redis
from celery import Celery
from kombu.exceptions import OperationalError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema
from sqlalchemy.orm import Session, sessionmaker

from orchestrator.access.domain_owners import check_domain_owner, domain_of
from orchestrator.domains.dryrun import DRY_RUN_KINDS, dry_run_job
from orchestrator.errors import InvalidInput
from orchestrator.hypervisors.demand import PlacementHints, hints_json_schema, needs_resources
from orchestrator.hypervisors.placer import Placement, Placer, describe
from orchestrator.jobs import store as jobstore
from orchestrator.jobs.lifecycle import JobState
from orchestrator.jobs.livestate import Family, LiveState
from orchestrator.jobs.publisher import TaskPublisher
from orchestrator.jobs.view import job_summary
from orchestrator.kinds import get_kind, parse_params
from orchestrator.kinds.provision import ProvisionParams
from orchestrator.kinds.registry import validation_errors
from orchestrator.models import Job
from orchestrator.placement import NoHypervisorFits
from orchestrator.settings import Settings

log = logging.getLogger(__name__)


class JobRequest(BaseModel):
    """The body of ``POST /v1/jobs``."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(description="A job kind; GET /v1/kinds lists them.")
    params: dict[str, Any] = Field(default_factory=dict, description="The kind's parameters.")
    hypervisor: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$",
        description="Where to run; omitted means placement chooses among the hypervisors "
        "that are up (for domain.define and vm.provision, among those with room for the VM).",
    )
    placement: Annotated[
        PlacementHints | None, WithJsonSchema({"anyOf": [hints_json_schema(), {"type": "null"}]})
    ] = Field(None, description="How placement chooses when no hypervisor is named.")
    on_worker_lost: Literal["rerun", "fail"] | None = Field(
        None,
        description="What to do when the worker dies mid-job: run a new attempt (only for kinds "
        "safe to re-run; their default) or mark the job lost (default for other kinds).",
    )

    @classmethod
    def parse(cls, body: Any) -> JobRequest:
        if not isinstance(body, dict):
            raise InvalidInput(
                "the body must be a JSON object",
                errors=[{"field": "", "message": "must be an object"}],
            )
        try:
            return cls.model_validate(body)
        except ValidationError as exc:
            raise InvalidInput("invalid job request", errors=validation_errors(exc)) from None


class Submitter:
    """What the API (and anything else accepting jobs) needs to take one in."""

    def __init__(
        self, settings: Settings, sessions: sessionmaker[Session], live: LiveState, celery: Celery
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.live = live
        self.publisher = TaskPublisher(celery, live)
        self.placer = Placer(sessions, live, settings.hypervisor, settings.placement_policy())

    def submit(
        self,
        request: JobRequest,
        submitter: str,
        idempotency_key: str | None = None,
        *,
        own_domains_only: bool = False,
    ) -> tuple[Job, bool]:
        """Store and publish the job; returns (job, created). Nothing is stored on bad input.
        With ``own_domains_only`` (a token without ``admin``), a job that makes or acts on a
        domain is refused unless the domain is the submitter's or its name is free."""
        kind = get_kind(request.kind)
        model = parse_params(kind, request.params)
        params = model.model_dump(mode="json")
        rerun = _rerun_on_loss(request, kind.safe_to_rerun)
        counted = isinstance(model, ProvisionParams) and model.count is not None
        new = jobstore.NewJob(
            kind.name,
            params,
            # A count's parent runs nowhere; its children each have their hypervisor.
            "" if counted else request.hypervisor or "",
            submitter,
            idempotency_key,
            rerun,
            placed=request.hypervisor is None,
            domain=domain_of(kind.name, params),
        )
        owner_check = self._owner_check if own_domains_only else None
        if idempotency_key is not None:
            with self.sessions() as session:
                if (earlier := jobstore.repeated_request(session, new)) is not None:
                    return earlier, False
        if isinstance(model, ProvisionParams) and counted:
            return self._submit_family(request, new, model.members(), owner_check)
        placement = self.placer.place(kind.name, model, request.hypervisor, request.placement)
        new = replace(new, hypervisor=placement.hypervisor)
        with self.sessions() as session:
            try:
                if owner_check is not None:
                    owner_check(session, [new])
                job, created = jobstore.create_job(session, new)
            except BaseException:
                _settle_claim(self.placer, placement, None)
                raise
            # An earlier job with this idempotency key answers: it has its own claim.
            _settle_claim(self.placer, placement, job.id if created else None)
            if created:
                self._publish(session, job, describe(placement))
        return job, created

    def _owner_check(self, session: Session, jobs: list[jobstore.NewJob]) -> None:
        for new in jobs:
            if new.domain is not None:
                check_domain_owner(
                    session, self.live.state, new.kind, new.hypervisor, new.domain, new.submitter
                )

    def _submit_family(
        self,
        request: JobRequest,
        parent: jobstore.NewJob,
        members: list[ProvisionParams],
        owner_check: Callable[[Session, list[jobstore.NewJob]], None] | None,
    ) -> tuple[Job, bool]:
        """A count request: every member placed and claimed (all or none), then the parent and
        its children stored in one transaction, then the children published."""
        placements = self._place_members(request, members)
        children = [
            jobstore.NewJob(
                parent.kind,
                member.model_dump(mode="json"),
                placement.hypervisor,
                parent.submitter,
                rerun_on_loss=parent.rerun_on_loss,
                domain=member.name,
            )
            for member, placement in zip(members, placements, strict=True)
        ]
        with self.sessions() as session:
            try:
                if owner_check is not None:
                    owner_check(session, children)
                job, child_jobs, created = jobstore.create_family(session, parent, children)
            except BaseException:
                _release_all(self.placer, placements)
                raise
            if not created:  # an earlier request with this idempotency key answers
                _release_all(self.placer, placements)
                return job, False
            for placement, child in zip(placements, child_jobs, strict=True):
                _settle_claim(self.placer, placement, child.id)
            self._publish_family(session, job, child_jobs, placements)
        return job, True

    def _place_members(
        self, request: JobRequest, members: list[ProvisionParams]
    ) -> list[Placement]:
        """One placement per member, each seeing the claims of those before it; when one
        fits nowhere, the others' claims are given back and the error names the member."""
        placements: list[Placement] = []
        try:
            for index, member in enumerate(members, 1):
                try:
                    placements.append(
                        self.placer.place(
                            request.kind, member, request.hypervisor, request.placement
                        )
                    )
                except NoHypervisorFits as exc:
                    raise NoHypervisorFits(
                        f"VM {index} of {len(members)} ({member.name}): {exc.detail}; "
                        "nothing was placed",
                        **exc.extra,
                    ) from None
        except BaseException:
            _release_all(self.placer, placements)
            raise
        return placements

    def _publish_family(
        self, session: Session, parent: Job, children: list[Job], placements: list[Placement]
    ) -> None:
        hosts = Counter(placement.hypervisor for placement in placements)
        spread = ", ".join(f"{host} {n}" for host, n in sorted(hosts.items()))
        try:
            self.live.open_family(parent.id, len(children), f"{len(children)} VMs: {spread}")
        except redis.RedisError as exc:
            log.warning("job %s stays pending, Redis unreachable: %s", parent.id, exc)
            return
        parent.state = JobState.QUEUED.value
        for child, placement in zip(children, placements, strict=True):
            self._publish(session, child, describe(placement), (parent.id, len(children)))

    def dry_run(self, request: JobRequest) -> dict[str, Any]:
        """What the job would do, changing and claiming nothing: for a kind that makes a VM,
        the placement decision filter by filter (and for ``domain.define`` the XML and volumes
        on the hypervisor chosen); other kinds as ``dry_run_job`` has them."""
        if not needs_resources(request.kind):
            facts = self.live.heartbeat(request.hypervisor) if request.hypervisor else None
            return dry_run_job(request.kind, request.params, facts)
        kind = get_kind(request.kind)
        model = parse_params(kind, request.params)
        if isinstance(model, ProvisionParams) and model.count is not None:
            members = model.members()
            batch = self.placer.preview_many(
                kind.name, members[0], len(members), request.hypervisor, request.placement
            )
            placed = dict(zip((m.name for m in members), batch.hosts, strict=False))
            return {"dry_run": True, "kind": kind.name, "vms": placed, "placement": batch.to_dict()}
        decision = self.placer.preview(kind.name, model, request.hypervisor, request.placement)
        chosen = decision.chosen
        if kind.name in DRY_RUN_KINDS:
            facts = self.live.heartbeat(chosen) if chosen else None
            document = dry_run_job(kind.name, request.params, facts)
        else:
            document = {"dry_run": True, "kind": kind.name}
        return {**document, "hypervisor": chosen, "placement": decision.to_dict()}

    def _publish(
        self, session: Session, job: Job, reason: str, family: Family | None = None
    ) -> None:
        # The fast path. The outbox row stays either way: the recorder deletes it once it sees
        # the job was sent, or sends the job itself when the broker was unreachable here.
        try:
            self.publisher.publish(
                job_id=job.id,
                attempt=1,
                kind=job.kind,
                hypervisor=job.hypervisor,
                params=job.params,
                summary=job_summary(job),
                reason=reason,
                family=family,
            )
        except (redis.RedisError, OperationalError, OSError) as exc:
            log.warning("job %s stays pending, broker unreachable: %s", job.id, exc)
            return
        # The returned object (never attached to a session) shows the state it reached; the
        # row says so once the recorder has stored the queued event.
        job.state = JobState.QUEUED.value


def _settle_claim(placer: Placer, placement: Placement, job_id: str | None) -> None:
    """Bind the placement's claim to the job stored, or release it when none was. The job is
    stored either way: a claim Redis could not settle is left to the recorder's sweep."""
    if placement.claim is None:
        return
    try:
        if job_id is None:
            placer.claims.release(placement.claim)
        else:
            placer.claims.bind(placement.claim, job_id)
    except redis.RedisError as exc:
        log.warning("claim %s left to the recorder: %s", placement.claim, exc)


def _release_all(placer: Placer, placements: list[Placement]) -> None:
    for placement in placements:
        _settle_claim(placer, placement, None)


def _rerun_on_loss(request: JobRequest, safe_to_rerun: bool) -> bool:
    if request.on_worker_lost == "rerun" and not safe_to_rerun:
        raise InvalidInput(
            f"job kind {request.kind!r} is not safe to re-run",
            errors=[{"field": "on_worker_lost", "message": "'rerun' needs a kind safe to re-run"}],
        )
    if request.on_worker_lost is None:
        return safe_to_rerun
    return request.on_worker_lost == "rerun"

"""Job kinds for domains (virtual machines): define from a spec, power actions, state reads.

``domain.define`` takes a :class:`~orchestrator.domains.spec.DomainSpec` as its parameters, with
one difference: job parameters are stored in SQL and queued through Redis, so its graphics take
no literal ``password``, only a ``password_file`` the worker reads (``JobGraphicsSpec``). The spec
itself still accepts a password for rendering XML locally (``orchestrator virt-install
--print-xml``), where nothing is stored.

Every host path a ``domain.define`` names (disk and ISO paths, kernel, initrd, serial log,
display password file) is refused with 403 when it lies in a system directory; the worker then
resolves each one and checks it against its roots (:mod:`orchestrator.confinement`).

Every kind acts on one domain of the job's hypervisor, named by ``name``, and is an "ensure" (it
looks first and acts only when needed) except ``domain.reboot``, which cannot tell whether it
already rebooted.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, model_validator

from orchestrator.confinement import refuse_system_path
from orchestrator.domains.devices import JobGraphicsSpec
from orchestrator.domains.hostpaths import host_paths
from orchestrator.domains.names import check_object_name
from orchestrator.domains.spec import DomainSpec
from orchestrator.kinds.registry import JobParams, job_kind

DomainName = Annotated[
    str,
    AfterValidator(lambda value: check_object_name(value, "name")),
    Field(description="Domain name: 1-64 of letters, digits, _ . + -; not starting with - or ."),
]


@job_kind(
    "domain.define",
    "Ensure a domain exists as specified: create its new disks and cloud-init seed, define it, "
    "start it unless start is false. The same spec again changes nothing; another spec under "
    "the same name is a conflict naming the differences.",
    safe_to_rerun=True,
)
class DomainDefineParams(DomainSpec, JobParams):
    graphics: JobGraphicsSpec = JobGraphicsSpec()

    @model_validator(mode="after")
    def _no_system_directory(self) -> DomainDefineParams:
        # Forbidden propagates as itself (pydantic collects only ValueError): a 403, not a 422.
        for host_path in host_paths(self):
            refuse_system_path(host_path.field, host_path.path)
        return self


class DomainRef(JobParams):
    name: DomainName


@job_kind("domain.start", "Ensure a domain is running.", safe_to_rerun=True)
class DomainStartParams(DomainRef):
    pass


@job_kind(
    "domain.shutdown",
    "Ensure a domain is shut off: ask the guest (ACPI) and wait; with force, destroy it when "
    "the guest has not stopped within the timeout.",
    safe_to_rerun=True,
)
class DomainShutdownParams(DomainRef):
    timeout: float = Field(
        60.0, gt=0, le=3600, description="Seconds to wait for the guest to power off."
    )
    force: bool = Field(False, description="Destroy (pull the plug) after the timeout.")


@job_kind(
    "domain.reboot",
    "Reboot a running domain: ask the guest (ACPI), or reset it at once with force.",
)
class DomainRebootParams(DomainRef):
    force: bool = Field(False, description="Reset the virtual machine instead of asking.")


@job_kind(
    "domain.destroy", "Ensure a domain is not running (stops it at once).", safe_to_rerun=True
)
class DomainDestroyParams(DomainRef):
    pass


@job_kind("domain.suspend", "Ensure a running domain is paused.", safe_to_rerun=True)
class DomainSuspendParams(DomainRef):
    pass


@job_kind("domain.resume", "Ensure a paused domain runs again.", safe_to_rerun=True)
class DomainResumeParams(DomainRef):
    pass


@job_kind(
    "domain.undefine",
    "Ensure a stopped domain is not defined; with remove_storage also delete its disk volumes.",
    safe_to_rerun=True,
)
class DomainUndefineParams(DomainRef):
    remove_storage: bool = Field(
        False,
        description="Delete the domain's disk volumes (not cdrom media other than its "
        "cloud-init seed) that no other domain uses.",
    )


@job_kind(
    "domain.set-autostart", "Ensure a domain starts, or not, with the host.", safe_to_rerun=True
)
class DomainAutostartParams(DomainRef):
    autostart: bool


@job_kind(
    "domain.info",
    "One domain's state, vCPUs, memory, disks, interfaces with MACs, VNC address, autostart.",
    safe_to_rerun=True,
)
class DomainInfoParams(DomainRef):
    pass


@job_kind(
    "domain.list",
    "Every domain of the hypervisor, described as domain.info does.",
    safe_to_rerun=True,
)
class DomainListParams(JobParams):
    pass

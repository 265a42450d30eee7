"""Job kinds and their parameter models. Importing this package registers every kind."""

from orchestrator.kinds import basic
from orchestrator.kinds import domains as domains
from orchestrator.kinds import fleet as fleet
from orchestrator.kinds import provision as provision
from orchestrator.kinds import storage as storage
from orchestrator.kinds.registry import KINDS, JobKind, JobParams, get_kind, job_kind, parse_params

__all__ = ["KINDS", "JobKind", "JobParams", "basic", "get_kind", "job_kind", "parse_params"]

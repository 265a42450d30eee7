"""The sshd hosts fleet tests run on; they live in :mod:`orchestrator.sshd_hosts` so the demo
can start them too."""

from orchestrator.sshd_hosts import (
    SshdFleet,
    SshdHost,
    free_port,
    keygen,
    missing_parts,
    start_fleet,
)

__all__ = ["SshdFleet", "SshdHost", "free_port", "keygen", "missing_parts", "start_fleet"]

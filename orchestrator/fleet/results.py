"""What a fleet run reports: one result per host, and the whole run as a mapping with the
views Fabric's GroupResult and Ansible's PLAY RECAP give."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class HostStatus(StrEnum):
    OK = "ok"  # the module ran and changed nothing
    CHANGED = "changed"  # the module ran and changed the host
    FAILED = "failed"  # connected, but the module failed (non-zero rc, timeout, error)
    UNREACHABLE = "unreachable"  # connect, handshake, host key or authentication failed
    SKIPPED = "skipped"  # never tried: an earlier batch went over max_fail_percentage


@dataclass
class HostResult:
    """The outcome on one host. Texts are redacted; durations are milliseconds."""

    host: str
    status: HostStatus
    rc: int | None = None
    stdout: str = ""
    stderr: str = ""
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    # Bytes the command wrote that the result does not hold (stream or job cap).
    stdout_dropped_bytes: int = 0
    stderr_dropped_bytes: int = 0
    changed: bool = False
    error: str | None = None
    # "matched" (known key), "recorded" (accept-new stored it now) or "off" (not checked).
    host_key_check: str | None = None
    reused_connection: bool = False
    durations_ms: dict[str, float] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status in (HostStatus.OK, HostStatus.CHANGED)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy, as a job result carries it."""
        out = asdict(self)
        out["status"] = self.status.value
        return out


@dataclass(frozen=True)
class RecapCounts:
    """One line of Ansible's PLAY RECAP (a changed host counts in ``ok`` too, as there)."""

    ok: int = 0
    changed: int = 0
    unreachable: int = 0
    failed: int = 0
    skipped: int = 0


@dataclass(frozen=True)
class OutputSummary:
    """How much command output the run kept, against its per-job cap."""

    job_cap_bytes: int
    kept_bytes: int  # as stored (JSON)
    dropped_bytes: int  # as the commands wrote them, over every host and stream
    job_cap_reached: bool


class FleetResult(Mapping[str, HostResult]):
    """Host name -> result, in the order the hosts were given."""

    def __init__(
        self,
        results: Mapping[str, HostResult],
        stopped_reason: str | None = None,
        output: OutputSummary | None = None,
    ):
        self._results = dict(results)
        self.stopped_reason = stopped_reason  # why later batches were skipped, if they were
        self.output = output

    def __getitem__(self, host: str) -> HostResult:
        return self._results[host]

    def __iter__(self) -> Iterator[str]:
        return iter(self._results)

    def __len__(self) -> int:
        return len(self._results)

    def _where(self, *statuses: HostStatus) -> dict[str, HostResult]:
        return {h: r for h, r in self._results.items() if r.status in statuses}

    @property
    def succeeded(self) -> dict[str, HostResult]:
        return self._where(HostStatus.OK, HostStatus.CHANGED)

    @property
    def failed(self) -> dict[str, HostResult]:
        return self._where(HostStatus.FAILED)

    @property
    def unreachable(self) -> dict[str, HostResult]:
        return self._where(HostStatus.UNREACHABLE)

    @property
    def skipped(self) -> dict[str, HostResult]:
        return self._where(HostStatus.SKIPPED)

    @property
    def all_ok(self) -> bool:
        return len(self.succeeded) == len(self._results)

    def recap(self) -> dict[str, RecapCounts]:
        """Per host, the counts Ansible's PLAY RECAP prints for this one task."""
        return {host: _recap_counts(result.status) for host, result in self._results.items()}

    def format_recap(self) -> str:
        """The recap as Ansible prints it, one host per line."""
        width = max((len(h) for h in self._results), default=0)
        lines = []
        for host, c in self.recap().items():
            lines.append(
                f"{host:<{width}} : ok={c.ok:<4} changed={c.changed:<4} "
                f"unreachable={c.unreachable:<4} failed={c.failed:<4} skipped={c.skipped:<4}"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary: per-host results, recap, why the run stopped early and how
        much output it kept."""
        return {
            "hosts": {h: r.to_dict() for h, r in self._results.items()},
            "recap": {h: asdict(c) for h, c in self.recap().items()},
            "stopped_reason": self.stopped_reason,
            "output": asdict(self.output) if self.output is not None else None,
        }


def _recap_counts(status: HostStatus) -> RecapCounts:
    return {
        HostStatus.OK: RecapCounts(ok=1),
        HostStatus.CHANGED: RecapCounts(ok=1, changed=1),
        HostStatus.FAILED: RecapCounts(failed=1),
        HostStatus.UNREACHABLE: RecapCounts(unreachable=1),
        HostStatus.SKIPPED: RecapCounts(skipped=1),
    }[status]

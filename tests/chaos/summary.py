"""The counts a chaos run ends with, per fault, and the table ``make chaos`` prints."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from tests.chaos.checks import MUST_BE_ZERO, Finding
from tests.chaos.client import Tally


@dataclass
class FaultTotals:
    trials: int = 0
    jobs: int = 0
    states: Counter[str] = field(default_factory=Counter)
    findings: Counter[str] = field(default_factory=Counter)
    bad_inputs: int = 0
    server_errors: int = 0

    def add(self, other: FaultTotals) -> None:
        self.trials += other.trials
        self.jobs += other.jobs
        self.states += other.states
        self.findings += other.findings
        self.bad_inputs += other.bad_inputs
        self.server_errors += other.server_errors

    def row(self) -> list[int]:
        states = self.states
        return [
            self.trials,
            self.jobs,
            states["succeeded"],
            states["failed"],
            states["lost"],
            *(self.findings[c] for c in MUST_BE_ZERO),
            self.bad_inputs,
            self.server_errors,
        ]


@dataclass
class Summary:
    seed: int
    per_fault: dict[str, FaultTotals]
    findings: list[Finding]
    tally: Tally
    vms_made: Counter[str]  # per hypervisor, succeeded VMs whose domains libvirt was checked for

    def count(self, category: str) -> int:
        return sum(totals.findings[category] for totals in self.per_fault.values())

    @property
    def clean(self) -> bool:
        return not self.findings and not self.tally.server_errors and not self.bad_accepted

    @property
    def bad_accepted(self) -> list[str]:
        return self.tally.bad_inputs_accepted

    def table(self) -> str:
        columns = ["trials", "jobs", "succeeded", "failed", "ended lost", *MUST_BE_ZERO]
        columns += ["bad inputs", "5xx"]
        width = max(len(name) for name in self.per_fault) + 2
        lines = [f"{'fault':<{width}}" + "".join(f"{c:>12}" for c in columns)]
        total = FaultTotals()
        for name, totals in self.per_fault.items():
            lines.append(f"{name:<{width}}" + "".join(f"{v:>12}" for v in totals.row()))
            total.add(totals)
        lines.append(f"{'all':<{width}}" + "".join(f"{v:>12}" for v in total.row()))
        spread = ", ".join(f"{name} {n}" for name, n in sorted(self.vms_made.items()))
        lines.append(
            f"seed {self.seed}; VMs made {self.vms_made.total()} ({spread}); bad inputs taken "
            f"(must be 0): "
            f"{len(self.bad_accepted)}; 5xx seen (must be 0): {len(self.tally.server_errors)}; "
            f"requests answered {self.tally.answers}, unanswered while a service was down "
            f"{self.tally.unreachable}"
        )
        return "\n".join(lines)

    def report(self) -> str:
        problems = [str(f) for f in self.findings]
        problems += [f"[5xx] {e}" for e in self.tally.server_errors]
        problems += [f"[bad input taken] {e}" for e in self.bad_accepted]
        return "\n".join([self.table(), *problems])

"""``python -m tests.chaos``: the fault suite with more trials than the test suite runs (``make
chaos``). Exits 1 when any count that must be zero is not."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from tests.chaos.driver import ChaosConfig, run_chaos
from tests.chaos.faults import FAULTS
from tests.support.sshd import missing_parts, start_fleet

SSHD_HOSTS = 3
FIRST_OCTET = 40  # 127.0.0.42-44: apart from the test suite's fleet


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__)
    parser.add_argument("--trials", type=int, default=5, help="trials per fault")
    parser.add_argument("--seed", type=int, help="replay a run's random choices")
    parser.add_argument(
        "--freeze-seconds", type=float, default=30.0, help="how long Redis stays frozen"
    )
    parser.add_argument(
        "--fault", action="append", choices=sorted(FAULTS), help="only these (repeatable)"
    )
    args = parser.parse_args(argv)
    reason = missing_parts()
    if reason:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    config = ChaosConfig(
        trials=args.trials,
        faults=tuple(args.fault or FAULTS),
        freeze_seconds=args.freeze_seconds,
        seed=args.seed,
    )
    root = Path(tempfile.mkdtemp(prefix="chaos-"))
    sshd = start_fleet(SSHD_HOSTS, FIRST_OCTET)
    clean = False
    try:
        clean = run_chaos(root, sshd, config).clean
    finally:
        sshd.stop()
        if clean:
            shutil.rmtree(root, ignore_errors=True)
        else:  # the services' logs, to read what happened
            print(f"logs kept in {root / 'var' / 'logs'}", file=sys.stderr)
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())

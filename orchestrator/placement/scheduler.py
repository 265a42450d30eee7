"""One placement decision: filter, weigh, rank; when nothing is left, find the hypervisor
that came closest."""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from itertools import islice
from operator import indexOf, is_not

from orchestrator.placement.decision import (
    NAMES_SHOWN,
    Candidate,
    Closest,
    Decision,
    FilterOutcome,
)
from orchestrator.placement.filters import Filter
from orchestrator.placement.headroom import Headroom
from orchestrator.placement.request import PlacementRequest
from orchestrator.placement.weighers import Weigher, weigh


def decide(
    rows: Sequence[Headroom],
    request: PlacementRequest,
    filters: Sequence[Filter],
    weighers: Sequence[Weigher],
    ranked: int,
) -> Decision:
    """Run ``filters`` in order over ``rows`` (sorted by name, so that equal weights rank by
    name), then rank what is left by ``weighers``."""
    applied = [f for f in filters if f.applies(request)]
    remaining = list(rows)
    outcomes = []
    for rule in applied:
        kept = rule.keep(remaining, request)
        outcomes.append(_outcome(rule, request, remaining, kept))
        remaining = kept
    if not remaining:
        closest = closest_host(rows, request, applied)
        return Decision(len(rows), request.strategy, tuple(outcomes), closest=closest)
    candidates = _rank(remaining, weighers, ranked)
    return Decision(
        len(rows),
        request.strategy,
        tuple(outcomes),
        chosen=candidates[0].name,
        candidates=candidates,
        candidate_count=len(remaining),
    )


def closest_host(
    rows: Sequence[Headroom], request: PlacementRequest, filters: Sequence[Filter]
) -> Closest | None:
    """The hypervisor failing the fewest filters, then missing the least (as a share of what
    was asked, summed over the filters it fails), then first by name."""
    best: tuple[int, float, str] | None = None
    best_lacks: tuple[tuple[str, str], ...] = ()
    named = [(rule.label(request), rule) for rule in filters]
    for row in rows:
        failed = [
            (name, lack) for name, rule in named if (lack := rule.lack(row, request)) is not None
        ]
        rank = (len(failed), sum(lack.shortfall for _, lack in failed), row.name)
        if best is None or rank < best:
            best = rank
            best_lacks = tuple((name, lack.what) for name, lack in failed)
    if best is None:
        return None
    return Closest(best[2], len(filters) - best[0], best_lacks)


def _outcome(
    rule: Filter, request: PlacementRequest, before: list[Headroom], after: list[Headroom]
) -> FilterOutcome:
    removed = len(before) - len(after)
    if not removed:
        return FilterOutcome(rule.label(request), 0)
    shown = _first_removed(before, after)
    groups: dict[str, list[str]] = {}
    for row in shown:
        reason = rule.reason_key(row)
        if reason is not None:
            groups.setdefault(reason, []).append(row.name)
    return FilterOutcome(
        rule.label(request),
        removed,
        tuple(row.name for row in shown),
        {reason: tuple(names) for reason, names in groups.items()},
    )


def _first_removed(before: list[Headroom], after: list[Headroom]) -> list[Headroom]:
    """The first rows of ``before`` missing from ``after``. A filter keeps the order, so the
    two lists are walked in step and part where a row was removed; the walk runs in C
    (``map`` and ``indexOf``) because this runs for every filter of every decision."""
    shown: list[Headroom] = []
    i = j = 0  # before[:i] and after[:j] are accounted for
    while len(shown) < NAMES_SHOWN and i < len(before):
        if j == len(after):
            shown.extend(before[i : i + NAMES_SHOWN - len(shown)])
            break
        parted = map(is_not, islice(before, i, None), islice(after, j, None))
        try:
            step = indexOf(parted, True)
        except ValueError:  # after[j:] runs to its end in step: every later row was removed
            step = len(after) - j
            i, j = i + step, j + step
            continue
        shown.append(before[i + step])
        i, j = i + step + 1, j + step
    return shown


def _rank(rows: list[Headroom], weighers: Sequence[Weigher], ranked: int) -> tuple[Candidate, ...]:
    totals, scales = weigh(rows, weighers)
    # nlargest is stable: among equal weights the earlier row, the first by name, wins.
    best = heapq.nlargest(ranked, range(len(rows)), key=totals.__getitem__)
    return tuple(
        Candidate(
            rows[i].name,
            totals[i],
            {scale.weigher.name: scale.score(rows[i]) for scale in scales},
        )
        for i in best
    )

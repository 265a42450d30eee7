"""Joins each job kind to the function that runs it on a worker.

A handler is registered by its kind's parameter model, not by the kind's name, so mypy checks
that the function takes the model the API validated; :func:`check_every_kind_handled` lets a
worker refuse to start with a kind it could not run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from orchestrator.kinds import KINDS
from orchestrator.kinds.registry import JobParams
from workers.context import JobContext

Handler = Callable[[JobContext, Any], Any]
HANDLERS: dict[str, Handler] = {}

P = TypeVar("P", bound=JobParams)
R = TypeVar("R")


class UnhandledKinds(RuntimeError):
    """Raised when a worker starts with job kinds that have no handler."""


def handles(
    params: type[P],
) -> Callable[[Callable[[JobContext, P], R]], Callable[[JobContext, P], R]]:
    """Register the decorated function as the handler of the kind whose parameters are
    ``params``."""
    kind = _kind_of(params)

    def register(handler: Callable[[JobContext, P], R]) -> Callable[[JobContext, P], R]:
        if kind in HANDLERS:
            raise ValueError(f"job kind {kind!r} has two handlers")
        HANDLERS[kind] = handler
        return handler

    return register


def check_every_kind_handled() -> None:
    """UnhandledKinds naming each registered kind without a handler."""
    missing = sorted(set(KINDS) - set(HANDLERS))
    if missing:
        raise UnhandledKinds(f"no handler for job kinds: {', '.join(missing)}")


def _kind_of(params: type[JobParams]) -> str:
    names = [kind.name for kind in KINDS.values() if kind.params is params]
    if len(names) != 1:
        raise ValueError(f"{params.__name__} is the parameter model of {len(names)} job kinds")
    return names[0]

"""Maps a job kind's name to the function that runs it on a worker."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from orchestrator.kinds import KINDS
from workers.context import JobContext

Handler = Callable[[JobContext, Any], Any]
HANDLERS: dict[str, Handler] = {}

H = TypeVar("H", bound=Handler)


def handles(kind: str) -> Callable[[H], H]:
    """Register the decorated function as the handler of ``kind`` (a registered job kind)."""

    def register(handler: H) -> H:
        if kind not in KINDS:
            raise ValueError(f"no job kind {kind!r} to handle")
        HANDLERS[kind] = handler
        return handler

    return register

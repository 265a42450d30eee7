"""Removes passwords from any text before it leaves the executor (results, errors, logs)."""

from __future__ import annotations

from collections.abc import Iterable

MASK = "********"


class Redactor:
    """Replaces every known secret in a text with a mask."""

    def __init__(self, secrets: Iterable[str]) -> None:
        # Longest first, so a secret that contains another is masked whole.
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def error(self, exc: BaseException) -> str:
        """An exception as ``Type: message`` with secrets masked."""
        message = str(exc) or type(exc).__name__
        return self(message)

"""Writing the audit trail off the request's path: entries gather in memory and a background
thread writes each batch in one transaction, so a write or refusal costs its request an append
to a list, not a SQL transaction of its own beside the job's.

The price: entries not yet written when the process is killed (SIGKILL, out of memory, power)
are lost, at most the last ``FLUSH_INTERVAL_SECONDS`` and one transaction's worth. A process
that exits (SIGTERM, SIGINT, a gunicorn worker recycled) writes what it holds first.
"""

from __future__ import annotations

import atexit
import logging
import threading

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from orchestrator.access.audit import AuditRecord, record_many

log = logging.getLogger(__name__)

# How long an entry may wait to be written: what a killed process loses at most, and how
# often the writer commits under load (one transaction per interval, whatever the rate).
FLUSH_INTERVAL_SECONDS = 0.1
# Entries held at most; past this (SQL slower than the requests) the request that adds one
# writes them all itself, so the trail slows requests down rather than drop an entry.
MAX_PENDING = 1000


class AuditWriter:
    """Entries of one process, written in order, in batches, by one background thread."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        interval: float = FLUSH_INTERVAL_SECONDS,
        max_pending: int = MAX_PENDING,
    ) -> None:
        self._sessions = sessions
        self._interval = interval
        self._max_pending = max_pending
        self._pending: list[AuditRecord] = []
        self._wake = threading.Condition()
        self._writing = threading.Lock()  # one batch at a time, so rows keep their order
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    def submit(self, entry: AuditRecord) -> None:
        """Hold ``entry`` for the next batch; write now when the writer is behind or closed."""
        with self._wake:
            if self._thread is None and not self._closed.is_set():
                self._start()
            self._pending.append(entry)
            held = len(self._pending)
            if held == 1:
                self._wake.notify()
        if held >= self._max_pending or self._closed.is_set():
            self.flush()

    def flush(self) -> None:
        """Write every entry held so far; they are readable in SQL once this returns."""
        with self._writing:
            with self._wake:
                batch, self._pending = self._pending, []
            if batch:
                self._write(batch)

    def close(self) -> None:
        """Stop the background thread and write what is left (at exit, or when done with it)."""
        self._closed.set()
        with self._wake:
            self._wake.notify()
            thread = self._thread
        if thread is not None:
            thread.join()
            atexit.unregister(self.close)
        self.flush()

    def _start(self) -> None:
        # Started with the first entry, in the process that serves requests (after any fork).
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def _run(self) -> None:
        while not self._closed.is_set():
            with self._wake:
                while not self._pending and not self._closed.is_set():
                    self._wake.wait()
            # Let a batch gather: one transaction per interval however many requests come.
            self._closed.wait(self._interval)
            try:
                self.flush()
            except Exception:  # a dead writer would stop the whole trail
                log.exception("audit writer: a batch failed; going on with the next")

    def _write(self, batch: list[AuditRecord]) -> None:
        try:
            with self._sessions() as session:
                record_many(session, batch)
        except SQLAlchemyError as exc:
            # The requests already happened and were answered: say which entries are missing.
            first, last = batch[0], batch[-1]
            log.error(
                "%d audit entries not written (%s %s at %s to %s %s at %s): %s",
                len(batch),
                first.method,
                first.path,
                first.time.isoformat(),
                last.method,
                last.path,
                last.time.isoformat(),
                exc,
            )

"""A small HTTP client of the API, for the CLI, the demo and the benchmarks."""

from __future__ import annotations

import os
import time
from typing import Any

import requests

from orchestrator.jobs.lifecycle import JobState


class ApiError(RuntimeError):
    """Raised when the API answers with a problem document."""

    def __init__(self, problem: dict[str, Any]) -> None:
        self.problem = problem
        super().__init__(f"{problem.get('status')} {problem.get('title')}: {problem.get('detail')}")

    @property
    def status(self) -> int:
        """The HTTP status of the answer (500 when the problem document does not say)."""
        status = self.problem.get("status")
        return status if isinstance(status, int) else 500


class ApiClient:
    """``token`` defaults to ``ORCH_API_TOKEN`` from the environment, sent as a bearer token.
    ``timeout`` (seconds to connect and between bytes read) bounds each request; None waits as
    long as the network does."""

    def __init__(
        self,
        base_url: str,
        session: requests.Session | None = None,
        token: str | None = None,
        timeout: float | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.http = session or requests.Session()
        token = token if token is not None else os.environ.get("ORCH_API_TOKEN")
        if token:
            self.http.headers["Authorization"] = f"Bearer {token}"

    def submit(
        self,
        body: dict[str, Any],
        wait: float = 0,
        *,
        idempotency_key: str | None = None,
        **headers: str,
    ) -> dict[str, Any]:
        """The new job; with ``wait`` (at most 300 s), once it finished or the wait ran out.
        With ``idempotency_key``, a request sent again answers with the job the first made."""
        params = {"wait": wait} if wait else None
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        response = self.http.post(
            f"{self.base_url}/v1/jobs",
            json=body,
            params=params,
            headers=headers,
            timeout=self._timeout(wait),
        )
        return self._check(response)

    def job(self, job_id: str, wait: float = 0) -> dict[str, Any]:
        params = {"wait": wait} if wait else None
        url = f"{self.base_url}/v1/jobs/{job_id}"
        return self._check(self.http.get(url, params=params, timeout=self._timeout(wait)))

    def wait(self, job_id: str, timeout: float = 300.0) -> dict[str, Any]:
        """The job once it is finished (long-polls the API in slices of at most 60 s)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            job = self.job(job_id, wait=max(0.0, min(60.0, left)))
            if JobState(job["state"]).is_terminal or left <= 0:
                return job

    def events(self, job_id: str, after: int = 0) -> list[dict[str, Any]]:
        return self.events_page(job_id, after)["items"]

    def events_page(self, job_id: str, after: int = 0) -> dict[str, Any]:
        """``{"items": [...], "last_seq": N}``: the job's events after ``after``, oldest first."""
        url = f"{self.base_url}/v1/jobs/{job_id}/events"
        return self._check(self.http.get(url, params={"after": after}, timeout=self.timeout))

    def open_event_stream(self, job_id: str, after: int = 0) -> requests.Response:
        """The open response of ``GET /v1/jobs/<id>/events`` asked as Server-Sent Events,
        resuming after event ``after``. A server without the stream answers JSON (an
        ``events_page``); the caller reads the Content-Type and closes the response."""
        headers = {"Accept": "text/event-stream"}
        if after:
            headers["Last-Event-ID"] = str(after)
        url = f"{self.base_url}/v1/jobs/{job_id}/events"
        response = self.http.get(
            url, params={"after": after}, headers=headers, stream=True, timeout=self.timeout
        )
        if response.status_code >= 400:
            with response:
                self._check(response)
        return response

    def cancel(self, job_id: str) -> dict[str, Any]:
        """The job's document; ``cancel_requested`` is true when a running job was asked to
        stop and has not yet."""
        url = f"{self.base_url}/v1/jobs/{job_id}/cancel"
        return self._check(self.http.post(url, timeout=self.timeout))

    def list_jobs(self, filters: dict[str, Any]) -> list[dict[str, Any]]:
        return self.jobs_page(filters)["items"]

    def jobs_page(self, filters: dict[str, Any]) -> dict[str, Any]:
        """``{"items": [...], "next_cursor": ...}``; pass ``cursor`` in ``filters`` for the next."""
        url = f"{self.base_url}/v1/jobs"
        return self._check(self.http.get(url, params=filters, timeout=self.timeout))

    def post(self, path: str, body: Any, **query: str) -> Any:
        """POST ``body`` as JSON; the answer's JSON, or ApiError with the problem."""
        response = self.http.post(f"{self.base_url}{path}", json=body, params=query, timeout=60)
        return self._check(response)

    def put(self, path: str, body: Any) -> Any:
        """PUT ``body`` as JSON; the answer's JSON, or ApiError with the problem."""
        return self._check(self.http.put(f"{self.base_url}{path}", json=body, timeout=60))

    def get(self, path: str) -> Any:
        return self._check(self.http.get(f"{self.base_url}{path}", timeout=self.timeout))

    def _timeout(self, wait: float) -> float | None:
        """A request held open for ``wait`` seconds may be silent that long."""
        return None if self.timeout is None else self.timeout + wait

    @staticmethod
    def _check(response: requests.Response) -> Any:
        if response.status_code >= 400:
            try:
                problem = response.json()
            except ValueError:
                problem = {"status": response.status_code, "detail": response.text}
            raise ApiError(problem)
        return response.json()
